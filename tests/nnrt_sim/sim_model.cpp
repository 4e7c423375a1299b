// ohai NNRt simulator — model building (OH_NNModel_*). It lives in the core library so that
// core's compilation can use model objects directly; libneural_network_runtime.so exports these
// functions under their API names (sim_runtime.cpp), obtained through device registration.
//
// The checks are the ones the real runtime makes and that adapters trip over (reference section
// 2): `{NULL, 0}` for an empty list, 1..200 data tensors per side, inputs and outputs disjoint,
// parameters typed and valued before AddOperation (their values are read then), SetTensorData
// with exactly the byte size and once, GetAvailableOperations only after Finish.
#include <cstring>
#include <new>
#include <set>

#include "sim_compute.h"
#include "sim_call.h"
#include "sim_internal.h"
#include "sim_objects.h"
#include "sim_state.h"

namespace ohai_sim {

namespace {

OH_NN_ReturnCode check_array(const OH_NN_UInt32Array *a, const char *what, const char *fn) {
    if (a == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, std::string(what) + " array is NULL");
    // An empty list is {NULL, 0}; a pointer with no length, or a length with no pointer, is an error.
    if ((a->data == nullptr) != (a->size == 0)) {
        return fail(OH_NN_INVALID_PARAMETER, fn, std::string(what) + " array must be {NULL, 0} when empty");
    }
    return OH_NN_SUCCESS;
}

// A list of data tensors (operation or model inputs/outputs): 1..200, in range, OH_NN_TENSOR, no repeats.
OH_NN_ReturnCode check_data_list(const OH_NNModel *m, const OH_NN_UInt32Array *a, const char *what, const char *fn) {
    OH_NN_ReturnCode rc = check_array(a, what, fn);
    if (rc != OH_NN_SUCCESS) return rc;
    if (a->size < 1 || a->size > kMaxIoCount) {
        return fail(OH_NN_INVALID_PARAMETER, fn, std::string(what) + " count " + std::to_string(a->size) + " is not 1..200");
    }
    std::set<uint32_t> seen;
    for (uint32_t i = 0; i < a->size; ++i) {
        const uint32_t idx = a->data[i];
        if (idx >= m->tensors.size()) {
            return fail(OH_NN_INVALID_PARAMETER, fn, std::string(what) + " index " + std::to_string(idx) + " out of range");
        }
        if (m->tensors[idx].role != OH_NN_TENSOR) {
            return fail(OH_NN_INVALID_PARAMETER, fn,
                        std::string(what) + " tensor " + std::to_string(idx) + " is a parameter, not OH_NN_TENSOR");
        }
        if (!seen.insert(idx).second) {
            return fail(OH_NN_INVALID_PARAMETER, fn, std::string(what) + " index " + std::to_string(idx) + " repeated");
        }
    }
    return OH_NN_SUCCESS;
}

bool disjoint(const OH_NN_UInt32Array *a, const OH_NN_UInt32Array *b) {
    for (uint32_t i = 0; i < a->size; ++i) {
        for (uint32_t j = 0; j < b->size; ++j) {
            if (a->data[i] == b->data[j]) return false;
        }
    }
    return true;
}

// A scalar parameter: one element of the expected type, with its value set.
OH_NN_ReturnCode scalar_param(const ModelTensor &t, OH_NN_DataType type, const char *name, const char *fn) {
    size_t n = 0;
    if (t.meta.dtype != type) return fail(OH_NN_INVALID_PARAMETER, fn, std::string(name) + " has the wrong data type");
    if (!element_count(t.meta.shape, &n) || n != 1) {
        return fail(OH_NN_INVALID_PARAMETER, fn, std::string(name) + " must be a scalar, not " + shape_text(t.meta.shape));
    }
    return OH_NN_SUCCESS;
}

OH_NN_ReturnCode read_fuse(const ModelTensor &t, const char *name, const char *fn, int *out) {
    OH_NN_ReturnCode rc = scalar_param(t, OH_NN_INT8, name, fn);
    if (rc != OH_NN_SUCCESS) return rc;
    const int v = static_cast<int8_t>(t.data[0]);
    if (v != OH_NN_FUSED_NONE && v != OH_NN_FUSED_RELU && v != OH_NN_FUSED_RELU6) {
        return fail(OH_NN_INVALID_PARAMETER, fn, std::string(name) + " value " + std::to_string(v) + " is not a fuse type");
    }
    *out = v;
    return OH_NN_SUCCESS;
}

// Reads the parameters of the operations the simulated NNRt knows; other operation types are
// recorded as given (the device then reports them unsupported).
OH_NN_ReturnCode read_params(const OH_NNModel *m, Operation *op, const char *fn) {
    std::set<int> roles;
    for (uint32_t idx : op->params) {
        const ModelTensor &t = m->tensors[idx];
        if (!roles.insert(t.role).second) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "parameter type " + std::to_string(t.role) + " given twice");
        }
    }
    if (op->type == OH_NN_OPS_MATMUL) {
        if (op->inputs.size() != 2 || op->outputs.size() != 1) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "MATMUL takes exactly 2 inputs and 1 output");
        }
        for (uint32_t idx : op->params) {
            const ModelTensor &t = m->tensors[idx];
            OH_NN_ReturnCode rc;
            switch (t.role) {
                case OH_NN_MATMUL_TRANSPOSE_A:
                    rc = scalar_param(t, OH_NN_BOOL, "TRANSPOSE_A", fn);
                    op->transpose_a = rc == OH_NN_SUCCESS && t.data[0] != 0;
                    break;
                case OH_NN_MATMUL_TRANSPOSE_B:
                    rc = scalar_param(t, OH_NN_BOOL, "TRANSPOSE_B", fn);
                    op->transpose_b = rc == OH_NN_SUCCESS && t.data[0] != 0;
                    break;
                case OH_NN_MATMUL_ACTIVATION_TYPE: rc = read_fuse(t, "ACTIVATION_TYPE", fn, &op->activation); break;
                default:
                    rc = fail(OH_NN_INVALID_PARAMETER, fn,
                              "parameter type " + std::to_string(t.role) + " does not belong to MATMUL");
            }
            if (rc != OH_NN_SUCCESS) return rc;
        }
        return OH_NN_SUCCESS;
    }
    if (op->type == OH_NN_OPS_FULL_CONNECTION) {
        // API 11: no bias input, and exactly [ACTIVATIONTYPE] or [AXIS, ACTIVATIONTYPE].
        if (op->inputs.size() != 2 || op->outputs.size() != 1) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "FULL_CONNECTION takes exactly 2 inputs (no bias on API 11) and 1 output");
        }
        for (uint32_t idx : op->params) {
            const ModelTensor &t = m->tensors[idx];
            OH_NN_ReturnCode rc;
            switch (t.role) {
                case OH_NN_FULL_CONNECTION_AXIS:
                    rc = scalar_param(t, OH_NN_INT64, "AXIS", fn);
                    if (rc == OH_NN_SUCCESS) {
                        std::memcpy(&op->axis, t.data.data(), sizeof op->axis);
                        op->has_axis = true;
                    }
                    break;
                case OH_NN_FULL_CONNECTION_ACTIVATIONTYPE: rc = read_fuse(t, "ACTIVATIONTYPE", fn, &op->activation); break;
                case OH_NN_FULL_CONNECTION_HAS_BIAS:
                case OH_NN_FULL_CONNECTION_USE_AXIS:
                    rc = fail(OH_NN_INVALID_PARAMETER, fn, "HAS_BIAS / USE_AXIS exist only from API 12");
                    break;
                default:
                    rc = fail(OH_NN_INVALID_PARAMETER, fn,
                              "parameter type " + std::to_string(t.role) + " does not belong to FULL_CONNECTION");
            }
            if (rc != OH_NN_SUCCESS) return rc;
        }
        if (roles.count(OH_NN_FULL_CONNECTION_ACTIVATIONTYPE) == 0) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "FULL_CONNECTION needs [ACTIVATIONTYPE] or [AXIS, ACTIVATIONTYPE]");
        }
        return OH_NN_SUCCESS;
    }
    return OH_NN_SUCCESS;
}

OH_NNModel *model_construct() {
    static const char fn[] = "OH_NNModel_Construct";
    try {
        State &st = state();
        Lock lock(st.mu);
        count_call(fn);
        auto *m = new OH_NNModel();
        m->serial = st.next_serial++;
        add_live(kModel, m);
        bump(kModelsAlive);
        clear_error();
        return m;
    } catch (...) {
        fail(OH_NN_MEMORY_ERROR, fn, "out of memory");
        return nullptr;
    }
}

OH_NN_ReturnCode model_add_tensor(OH_NNModel *m, const NN_TensorDesc *desc) {
    static const char fn[] = "OH_NNModel_AddTensorToModel";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc == OH_NN_SUCCESS) rc = check_handle(kTensorDesc, desc, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is finished");
        if (!dtype_valid(desc->meta.dtype)) return fail(OH_NN_INVALID_PARAMETER, fn, "descriptor has no data type");
        ModelTensor t;
        t.meta = desc->meta;
        m->tensors.push_back(std::move(t));
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OH_NN_ReturnCode model_set_tensor_type(OH_NNModel *m, uint32_t index, OH_NN_TensorType type) {
    static const char fn[] = "OH_NNModel_SetTensorType";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is finished");
        if (index >= m->tensors.size()) return fail(OH_NN_INVALID_PARAMETER, fn, "index out of range");
        // The real enum has many more parameter types than nnrt_api.h lists; any of them may be set
        // here, and AddOperation decides whether it fits the operation.
        if (raw(type) < 0 || raw(type) > 1000) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "unknown tensor type " + std::to_string(raw(type)));
        }
        ModelTensor &t = m->tensors[index];
        if (type != OH_NN_TENSOR && (t.is_model_input || t.is_model_output || t.producer >= 0)) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "a model input/output or operation output cannot be a parameter");
        }
        t.role = raw(type);
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OH_NN_ReturnCode model_set_tensor_data(OH_NNModel *m, uint32_t index, const void *data, size_t length) {
    static const char fn[] = "OH_NNModel_SetTensorData";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (data == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "data is NULL");
        if (length == 0) return fail(OH_NN_INVALID_PARAMETER, fn, "length is 0");
        if (m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is finished");
        if (index >= m->tensors.size()) return fail(OH_NN_INVALID_PARAMETER, fn, "index out of range");
        ModelTensor &t = m->tensors[index];
        if (is_dynamic(t.meta.shape)) return fail(OH_NN_INVALID_PARAMETER, fn, "tensor has a dynamic shape");
        if (t.has_data) return fail(OH_NN_INVALID_PARAMETER, fn, "tensor data already set");
        if (t.is_model_input || t.is_model_output || t.producer >= 0) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "a model input/output or operation output cannot have constant data");
        }
        size_t bytes = 0;
        if (!byte_size(t.meta, &bytes)) return fail(OH_NN_INVALID_PARAMETER, fn, "tensor has no valid size");
        if (length != bytes) {
            return fail(OH_NN_INVALID_PARAMETER, fn,
                        "length " + std::to_string(length) + " is not the tensor's byte size " + std::to_string(bytes));
        }
        // Copied: the caller may free its buffer afterwards.
        const auto *p = static_cast<const uint8_t *>(data);
        t.data.assign(p, p + length);
        t.has_data = true;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OH_NN_ReturnCode model_add_operation(OH_NNModel *m, OH_NN_OperationType type, const OH_NN_UInt32Array *params,
                                     const OH_NN_UInt32Array *inputs, const OH_NN_UInt32Array *outputs) {
    static const char fn[] = "OH_NNModel_AddOperation";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is finished");
        if (raw(type) < 1 || raw(type) > 1000) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "unknown operation type " + std::to_string(raw(type)));
        }
        if ((rc = check_array(params, "parameter", fn)) != OH_NN_SUCCESS) return rc;
        if ((rc = check_data_list(m, inputs, "input", fn)) != OH_NN_SUCCESS) return rc;
        if ((rc = check_data_list(m, outputs, "output", fn)) != OH_NN_SUCCESS) return rc;
        if (!disjoint(inputs, outputs)) return fail(OH_NN_INVALID_PARAMETER, fn, "inputs and outputs overlap");
        for (uint32_t i = 0; i < params->size; ++i) {
            const uint32_t idx = params->data[i];
            if (idx >= m->tensors.size()) return fail(OH_NN_INVALID_PARAMETER, fn, "parameter index out of range");
            const ModelTensor &t = m->tensors[idx];
            if (t.role == OH_NN_TENSOR) {
                return fail(OH_NN_INVALID_PARAMETER, fn,
                            "parameter tensor " + std::to_string(idx) + " has no parameter type (SetTensorType first)");
            }
            if (!t.has_data) {
                return fail(OH_NN_INVALID_PARAMETER, fn,
                            "parameter tensor " + std::to_string(idx) + " has no value (SetTensorData first)");
            }
        }
        for (uint32_t i = 0; i < outputs->size; ++i) {
            const ModelTensor &t = m->tensors[outputs->data[i]];
            if (t.has_data) return fail(OH_NN_INVALID_PARAMETER, fn, "an output tensor has constant data");
            if (t.producer >= 0) return fail(OH_NN_INVALID_PARAMETER, fn, "an output tensor is already written by an operation");
            if (t.is_model_input) return fail(OH_NN_INVALID_PARAMETER, fn, "an output tensor is a model input");
        }
        Operation op;
        op.type = raw(type);
        op.params.assign(params->data, params->data + params->size);
        op.inputs.assign(inputs->data, inputs->data + inputs->size);
        op.outputs.assign(outputs->data, outputs->data + outputs->size);
        if ((rc = read_params(m, &op, fn)) != OH_NN_SUCCESS) return rc;
        for (uint32_t idx : op.outputs) m->tensors[idx].producer = static_cast<int>(m->ops.size());
        m->ops.push_back(std::move(op));
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OH_NN_ReturnCode model_specify_io(OH_NNModel *m, const OH_NN_UInt32Array *inputs, const OH_NN_UInt32Array *outputs) {
    static const char fn[] = "OH_NNModel_SpecifyInputsAndOutputs";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is finished");
        if (m->io_specified) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "inputs and outputs were already specified");
        if ((rc = check_data_list(m, inputs, "model input", fn)) != OH_NN_SUCCESS) return rc;
        if ((rc = check_data_list(m, outputs, "model output", fn)) != OH_NN_SUCCESS) return rc;
        if (!disjoint(inputs, outputs)) return fail(OH_NN_INVALID_PARAMETER, fn, "model inputs and outputs overlap");
        for (uint32_t i = 0; i < inputs->size; ++i) {
            const ModelTensor &t = m->tensors[inputs->data[i]];
            if (t.has_data) return fail(OH_NN_INVALID_PARAMETER, fn, "a model input has constant data");
            if (t.producer >= 0) return fail(OH_NN_INVALID_PARAMETER, fn, "a model input is written by an operation");
        }
        for (uint32_t i = 0; i < outputs->size; ++i) {
            if (m->tensors[outputs->data[i]].has_data) {
                return fail(OH_NN_INVALID_PARAMETER, fn, "a model output has constant data");
            }
        }
        m->inputs.assign(inputs->data, inputs->data + inputs->size);
        m->outputs.assign(outputs->data, outputs->data + outputs->size);
        for (uint32_t idx : m->inputs) m->tensors[idx].is_model_input = true;
        for (uint32_t idx : m->outputs) m->tensors[idx].is_model_output = true;
        m->io_specified = true;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OH_NN_ReturnCode model_finish(OH_NNModel *m) {
    static const char fn[] = "OH_NNModel_Finish";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is already finished");
        if (m->ops.empty()) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model has no operation");
        if (!m->io_specified) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "SpecifyInputsAndOutputs was not called");
        // Every operation reads tensors that exist by then: model inputs, constants, or results of
        // earlier operations.
        for (size_t oi = 0; oi < m->ops.size(); ++oi) {
            for (uint32_t idx : m->ops[oi].inputs) {
                const ModelTensor &t = m->tensors[idx];
                const bool ready = t.is_model_input || t.has_data || (t.producer >= 0 && static_cast<size_t>(t.producer) < oi);
                if (!ready) {
                    return fail(OH_NN_INVALID_PARAMETER, fn,
                                "operation " + std::to_string(oi) + " reads tensor " + std::to_string(idx) +
                                    ", which is no model input, constant or earlier result");
                }
            }
        }
        for (uint32_t idx : m->outputs) {
            if (m->tensors[idx].producer < 0) {
                return fail(OH_NN_INVALID_PARAMETER, fn, "model output " + std::to_string(idx) + " is written by no operation");
            }
        }
        m->supported.reset(new bool[m->ops.size()]());
        m->finished = true;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OH_NN_ReturnCode model_get_available_operations(OH_NNModel *m, size_t device_id, const bool **is_supported,
                                                uint32_t *op_count) {
    static const char fn[] = "OH_NNModel_GetAvailableOperations";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kModel, m, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (is_supported == nullptr || op_count == nullptr) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "isSupported or opCount is NULL");
        }
        if (*is_supported != nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "*isSupported must be NULL on entry");
        if (!m->finished) return fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is not finished");
        if (find_device(device_id) == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "unknown device id");
        const bool all_unsupported = state().faults.op_unsupported;
        for (size_t i = 0; i < m->ops.size(); ++i) {
            m->supported[i] = !all_unsupported && device_support(m->tensors, m->ops[i]).empty();
        }
        *is_supported = m->supported.get();
        *op_count = static_cast<uint32_t>(m->ops.size());
        bump(kAvailableOpsQueries);
        clear_error();
        return OH_NN_SUCCESS;
    });
}

void model_destroy(OH_NNModel **m) {
    static const char fn[] = "OH_NNModel_Destroy";
    guarded(fn, [&] { return destroy_handle(m, kModel, kModelsAlive, fn, "model"); });
}

const OhaiNnrtSimModelApi kModelApi = {
    OHAI_NNRT_SIM_ABI,
    model_construct,
    model_add_tensor,
    model_set_tensor_data,
    model_set_tensor_type,
    model_add_operation,
    model_specify_io,
    model_finish,
    model_get_available_operations,
    model_destroy,
};

}  // namespace

const OhaiNnrtSimModelApi *model_api() { return &kModelApi; }

}  // namespace ohai_sim
