// ohai NNRt simulator — libneural_network_core.so: devices, tensor descriptors, compilation,
// execution and tensors, plus device registration (for sim_runtime.cpp) and the test functions
// of nnrt_sim.h. Only these extern "C" functions are exported (-fvisibility=hidden and a version
// script); each is checked against its PFN_ type from nnrt_api.h at the end of this file.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <type_traits>

#include "nnrt_sim.h"
#include "sim_compute.h"
#include "sim_call.h"
#include "sim_internal.h"
#include "sim_objects.h"
#include "sim_state.h"

#define OHAI_SIM_API extern "C" __attribute__((visibility("default")))

namespace ohai_sim {

const OhaiNnrtSimModelApi *model_api();   // sim_model.cpp

namespace {

NN_TensorDesc *new_desc(const TensorMeta &meta) {
    auto *d = new NN_TensorDesc();
    d->meta = meta;
    add_live(kTensorDesc, d);
    bump(kTensorDescsAlive);
    return d;
}

bool directory_exists(const std::string &path) {
    struct stat sb;
    return !path.empty() && ::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool read_file(const std::string &path, std::string *out) {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return false;
    char buf[512];
    size_t n;
    out->clear();
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
    std::fclose(f);
    return true;
}

bool write_file(const std::string &path, const std::string &text) {
    const std::string tmp = path + ".tmp" + std::to_string(static_cast<long long>(getpid()));
    FILE *f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return false;
    }
    return true;
}

// The "compiled model" in the cache directory: one small file per model, named by its
// fingerprint, so building the same model again is a cache hit.
OH_NN_ReturnCode use_cache(const OH_NNCompilation *c, const char *fn) {
    uint64_t h = model_hash(*c->model);
    h ^= static_cast<uint64_t>(c->float16) * 0x9e3779b97f4a7c15ULL;
    char name[64];
    std::snprintf(name, sizeof name, "/ohai_nnrt_sim_%016llx.nncache", static_cast<unsigned long long>(h));
    const std::string path = c->cache_dir + name;
    const std::string text = "ohai_nnrt_sim cache\nversion " + std::to_string(c->cache_version) + "\n";
    std::string existing;
    if (read_file(path, &existing) && existing == text) {
        bump(kCacheHits);
        return OH_NN_SUCCESS;
    }
    if (!write_file(path, text)) return fail(OH_NN_SAVE_CACHE_EXCEPTION, fn, "cannot write the cache file " + path);
    bump(kCacheWrites);
    return OH_NN_SUCCESS;
}

unsigned compute_threads(unsigned configured) {
    if (configured != 0) return configured;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : hw;
}

}  // namespace
}  // namespace ohai_sim

using namespace ohai_sim;

// ---------------------------------------------------------------------------------------------
// Registration (called by libneural_network_runtime.so's static initializer).

OHAI_SIM_API const OhaiNnrtSimModelApi *ohai_nnrt_sim_register_device(const OhaiNnrtSimDeviceInfo *info) {
    try {
        if (info == nullptr || info->abi != OHAI_NNRT_SIM_ABI || info->id == 0 || info->name == nullptr) return nullptr;
        State &st = state();
        Lock lock(st.mu);
        for (const Device &d : st.devices) {
            if (d.id == info->id) return model_api();
        }
        st.devices.push_back(Device{info->id, info->name, info->type});
        st.device_ids.clear();
        for (const Device &d : st.devices) st.device_ids.push_back(static_cast<size_t>(d.id));
        return model_api();
    } catch (...) {
        return nullptr;
    }
}

// ---------------------------------------------------------------------------------------------
// Devices.

OHAI_SIM_API OH_NN_ReturnCode OH_NNDevice_GetAllDevicesID(const size_t **allDevicesID, uint32_t *deviceCount) {
    static const char fn[] = "OH_NNDevice_GetAllDevicesID";
    return guarded(fn, [&] {
        State &st = state();
        Lock lock(st.mu);
        count_call(fn);
        if (allDevicesID == nullptr || deviceCount == nullptr) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "allDevicesID or deviceCount is NULL");
        }
        if (*allDevicesID != nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "*allDevicesID must be NULL on entry");
        if (st.faults.no_devices || st.device_ids.empty()) {
            *deviceCount = 0;
        } else {
            *allDevicesID = st.device_ids.data();   // owned by NNRt
            *deviceCount = static_cast<uint32_t>(st.device_ids.size());
        }
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNDevice_GetName(size_t deviceID, const char **name) {
    static const char fn[] = "OH_NNDevice_GetName";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        if (name == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "name is NULL");
        if (*name != nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "*name must be NULL on entry");
        const Device *d = find_device(deviceID);
        if (d == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "unknown device id");
        *name = d->name.c_str();
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNDevice_GetType(size_t deviceID, OH_NN_DeviceType *deviceType) {
    static const char fn[] = "OH_NNDevice_GetType";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        if (deviceType == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "deviceType is NULL");
        const Device *d = find_device(deviceID);
        if (d == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "unknown device id");
        *deviceType = d->type;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

// ---------------------------------------------------------------------------------------------
// Tensor descriptors.

OHAI_SIM_API NN_TensorDesc *OH_NNTensorDesc_Create(void) {
    static const char fn[] = "OH_NNTensorDesc_Create";
    return guarded_ptr<NN_TensorDesc>(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        clear_error();
        return new_desc(TensorMeta{});
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNTensorDesc_Destroy(NN_TensorDesc **tensorDesc) {
    static const char fn[] = "OH_NNTensorDesc_Destroy";
    return guarded(fn, [&] {
        return destroy_handle(tensorDesc, kTensorDesc, kTensorDescsAlive, fn, "tensorDesc");
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNTensorDesc_SetDataType(NN_TensorDesc *tensorDesc, OH_NN_DataType dataType) {
    static const char fn[] = "OH_NNTensorDesc_SetDataType";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kTensorDesc, tensorDesc, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (!dtype_valid(raw(dataType))) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "invalid data type " + std::to_string(raw(dataType)));
        }
        tensorDesc->meta.dtype = dataType;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNTensorDesc_SetShape(NN_TensorDesc *tensorDesc, const int32_t *shape, size_t shapeLength) {
    static const char fn[] = "OH_NNTensorDesc_SetShape";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kTensorDesc, tensorDesc, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (shape == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "shape is NULL");
        if (shapeLength == 0) return fail(OH_NN_INVALID_PARAMETER, fn, "shapeLength is 0");
        if (shapeLength > kMaxRank) return fail(OH_NN_INVALID_PARAMETER, fn, "more than 10 dimensions");
        for (size_t i = 0; i < shapeLength; ++i) {
            if (shape[i] != -1 && shape[i] <= 0) {
                return fail(OH_NN_INVALID_PARAMETER, fn, "dimension " + std::to_string(shape[i]) + " (only > 0, or -1 for dynamic)");
            }
        }
        tensorDesc->meta.shape.assign(shape, shape + shapeLength);
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNTensorDesc_SetFormat(NN_TensorDesc *tensorDesc, OH_NN_Format format) {
    static const char fn[] = "OH_NNTensorDesc_SetFormat";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kTensorDesc, tensorDesc, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (raw(format) < OH_NN_FORMAT_NONE || raw(format) > OH_NN_FORMAT_ND) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "invalid format " + std::to_string(raw(format)));
        }
        tensorDesc->meta.format = format;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNTensorDesc_GetByteSize(const NN_TensorDesc *tensorDesc, size_t *byteSize) {
    static const char fn[] = "OH_NNTensorDesc_GetByteSize";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kTensorDesc, tensorDesc, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        if (byteSize == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "byteSize is NULL");
        if (!dtype_valid(tensorDesc->meta.dtype)) return fail(OH_NN_INVALID_PARAMETER, fn, "descriptor has no data type");
        size_t bytes = 0;
        // A dynamic shape has no byte size yet: 0, as NNRt reports it.
        *byteSize = byte_size(tensorDesc->meta, &bytes) ? bytes : 0;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

// ---------------------------------------------------------------------------------------------
// Compilation.

OHAI_SIM_API OH_NNCompilation *OH_NNCompilation_Construct(const OH_NNModel *model) {
    static const char fn[] = "OH_NNCompilation_Construct";
    return guarded_ptr<OH_NNCompilation>(fn, [&]() -> OH_NNCompilation * {
        Lock lock(state().mu);
        count_call(fn);
        if (check_handle(kModel, model, fn) != OH_NN_SUCCESS) return nullptr;
        if (!model->finished) {
            fail(OH_NN_OPERATION_FORBIDDEN, fn, "model is not finished");
            return nullptr;
        }
        auto *c = new OH_NNCompilation();
        c->model = model;
        c->model_serial = model->serial;
        add_live(kCompilation, c);
        bump(kCompilationsAlive);
        clear_error();
        return c;
    });
}

// The settings can be changed until Build; after Build (successful or not) they are frozen.
#define OHAI_SIM_OPEN_COMPILATION(c)                                                                  \
    do {                                                                                              \
        OH_NN_ReturnCode rc_ = check_handle(kCompilation, c, fn);                                     \
        if (rc_ != OH_NN_SUCCESS) return rc_;                                                         \
        if ((c)->stage != OH_NNCompilation::Stage::kOpen) {                                           \
            return fail(OH_NN_OPERATION_FORBIDDEN, fn, "compilation was already built");              \
        }                                                                                             \
    } while (0)

OHAI_SIM_API OH_NN_ReturnCode OH_NNCompilation_SetDevice(OH_NNCompilation *compilation, size_t deviceID) {
    static const char fn[] = "OH_NNCompilation_SetDevice";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OHAI_SIM_OPEN_COMPILATION(compilation);
        compilation->device_id = deviceID;   // checked by Build, as NNRt does
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNCompilation_SetCache(OH_NNCompilation *compilation, const char *cachePath, uint32_t version) {
    static const char fn[] = "OH_NNCompilation_SetCache";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OHAI_SIM_OPEN_COMPILATION(compilation);
        if (cachePath == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, "cachePath is NULL");
        compilation->cache_set = true;
        compilation->cache_dir = cachePath;   // a missing directory fails Build, not this call
        compilation->cache_version = version;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNCompilation_SetPerformanceMode(OH_NNCompilation *compilation, OH_NN_PerformanceMode mode) {
    static const char fn[] = "OH_NNCompilation_SetPerformanceMode";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OHAI_SIM_OPEN_COMPILATION(compilation);
        if (raw(mode) < OH_NN_PERFORMANCE_NONE || raw(mode) > OH_NN_PERFORMANCE_EXTREME) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "invalid performance mode");
        }
        compilation->performance = mode;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNCompilation_EnableFloat16(OH_NNCompilation *compilation, bool enableFloat16) {
    static const char fn[] = "OH_NNCompilation_EnableFloat16";
    return guarded(fn, [&] {
        Lock lock(state().mu);
        count_call(fn);
        OHAI_SIM_OPEN_COMPILATION(compilation);
        compilation->float16 = enableFloat16;
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNCompilation_Build(OH_NNCompilation *compilation) {
    static const char fn[] = "OH_NNCompilation_Build";
    return guarded(fn, [&] {
        State &st = state();
        Lock lock(st.mu);
        count_call(fn);
        OH_NN_ReturnCode rc = check_handle(kCompilation, compilation, fn);
        if (rc != OH_NN_SUCCESS) return rc;
        OH_NNCompilation *c = compilation;
        if (c->stage == OH_NNCompilation::Stage::kBuilt) return fail(OH_NN_INVALID_PARAMETER, fn, "compilation is already built");
        if (c->stage == OH_NNCompilation::Stage::kFailed) {
            return fail(OH_NN_INVALID_PARAMETER, fn, "a failed Build used the compilation up");
        }
        auto failed = [&](OH_NN_ReturnCode code, const std::string &why) {
            c->stage = OH_NNCompilation::Stage::kFailed;
            bump(kBuildFailures);
            return fail(code, fn, why);
        };
        // The model must live until Build; the serial tells it from a new model at the same address.
        if (!is_live(kModel, c->model) || c->model->serial != c->model_serial) {
            return failed(OH_NN_INVALID_PARAMETER, "the model was destroyed before Build");
        }
        if (find_device(c->device_id) == nullptr) return failed(OH_NN_FAILED, "no such device");
        if (c->cache_set && !directory_exists(c->cache_dir)) {
            return failed(OH_NN_INVALID_PATH, "cache directory '" + c->cache_dir + "' does not exist");
        }
        if (st.faults.build_fail) return failed(OH_NN_FAILED, "injected fault build_fail");
        if (st.faults.op_unsupported) return failed(OH_NN_FAILED, "operations unsupported (injected fault op_unsupported)");
        std::string why;
        std::shared_ptr<Program> program = compile_program(*c->model, c->float16, &why);
        if (!program) return failed(OH_NN_FAILED, why);
        if (c->cache_set && (rc = use_cache(c, fn)) != OH_NN_SUCCESS) {
            c->stage = OH_NNCompilation::Stage::kFailed;
            bump(kBuildFailures);
            return rc;
        }
        c->program = std::move(program);
        c->stage = OH_NNCompilation::Stage::kBuilt;
        bump(kBuilds);
        clear_error();
        return OH_NN_SUCCESS;
    });
}

OHAI_SIM_API void OH_NNCompilation_Destroy(OH_NNCompilation **compilation) {
    static const char fn[] = "OH_NNCompilation_Destroy";
    guarded(fn, [&] {
        // Executors keep the compiled program; destroying the compilation does not affect them.
        return destroy_handle(compilation, kCompilation, kCompilationsAlive, fn, "compilation");
    });
}

// ---------------------------------------------------------------------------------------------
// Execution.

OHAI_SIM_API OH_NNExecutor *OH_NNExecutor_Construct(OH_NNCompilation *compilation) {
    static const char fn[] = "OH_NNExecutor_Construct";
    return guarded_ptr<OH_NNExecutor>(fn, [&]() -> OH_NNExecutor * {
        Lock lock(state().mu);
        count_call(fn);
        if (check_handle(kCompilation, compilation, fn) != OH_NN_SUCCESS) return nullptr;
        if (compilation->stage != OH_NNCompilation::Stage::kBuilt) {
            fail(OH_NN_OPERATION_FORBIDDEN, fn, "compilation is not built");
            return nullptr;
        }
        auto *e = new OH_NNExecutor();
        e->program = compilation->program;
        add_live(kExecutor, e);
        bump(kExecutorsAlive);
        clear_error();
        return e;
    });
}

OHAI_SIM_API NN_TensorDesc *OH_NNExecutor_CreateInputTensorDesc(const OH_NNExecutor *executor, size_t index) {
    static const char fn[] = "OH_NNExecutor_CreateInputTensorDesc";
    return guarded_ptr<NN_TensorDesc>(fn, [&]() -> NN_TensorDesc * {
        Lock lock(state().mu);
        count_call(fn);
        if (check_handle(kExecutor, executor, fn) != OH_NN_SUCCESS) return nullptr;
        const Program &p = *executor->program;
        if (index >= p.inputs.size()) {
            fail(OH_NN_INVALID_PARAMETER, fn, "input index out of range");
            return nullptr;
        }
        clear_error();
        return new_desc(p.tensors[p.inputs[index]]);
    });
}

OHAI_SIM_API NN_TensorDesc *OH_NNExecutor_CreateOutputTensorDesc(const OH_NNExecutor *executor, size_t index) {
    static const char fn[] = "OH_NNExecutor_CreateOutputTensorDesc";
    return guarded_ptr<NN_TensorDesc>(fn, [&]() -> NN_TensorDesc * {
        State &st = state();
        Lock lock(st.mu);
        count_call(fn);
        if (check_handle(kExecutor, executor, fn) != OH_NN_SUCCESS) return nullptr;
        const Program &p = *executor->program;
        if (index >= p.outputs.size()) {
            fail(OH_NN_INVALID_PARAMETER, fn, "output index out of range");
            return nullptr;
        }
        TensorMeta meta = p.tensors[p.outputs[index]];
        meta.shape = reported_output_shape(meta.shape, st.faults.wrong_output_size);
        clear_error();
        return new_desc(meta);
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNExecutor_RunSync(OH_NNExecutor *executor, NN_Tensor *inputTensor[], size_t inputCount,
                                                    NN_Tensor *outputTensor[], size_t outputCount) {
    static const char fn[] = "OH_NNExecutor_RunSync";
    std::shared_ptr<const Program> program;
    std::vector<const void *> ins;
    std::vector<void *> outs;
    bool wrong_size = false;
    unsigned slow_us = 0, threads = 1;
    const OH_NN_ReturnCode checked = guarded(fn, [&] {
        State &st = state();
        Lock lock(st.mu);
        count_call(fn);
        auto rejected = [&](OH_NN_ReturnCode code, const std::string &why) {
            bump(kRunFailures);
            return fail(code, fn, why);
        };
        OH_NN_ReturnCode rc = check_handle(kExecutor, executor, fn);
        if (rc != OH_NN_SUCCESS) {
            bump(kRunFailures);
            return rc;
        }
        program = executor->program;
        const Program &p = *program;
        if (inputTensor == nullptr || outputTensor == nullptr) return rejected(OH_NN_INVALID_PARAMETER, "tensor array is NULL");
        if (inputCount < 1 || inputCount > kMaxIoCount || outputCount < 1 || outputCount > kMaxIoCount) {
            return rejected(OH_NN_INVALID_PARAMETER, "tensor counts must be 1..200");
        }
        if (inputCount != p.inputs.size() || outputCount != p.outputs.size()) {
            return rejected(OH_NN_INVALID_PARAMETER, "the model has " + std::to_string(p.inputs.size()) + " inputs and " +
                                                         std::to_string(p.outputs.size()) + " outputs");
        }
        wrong_size = st.faults.wrong_output_size;
        // Each tensor must match the compiled model exactly: type, shape, byte size.
        auto matches = [&](NN_Tensor *t, const TensorMeta &want, const std::string &what) -> OH_NN_ReturnCode {
            if (t == nullptr) return rejected(OH_NN_INVALID_PARAMETER, what + " is NULL");
            if (!is_live(kTensor, t)) {
                bump(kBadHandles);
                return rejected(OH_NN_INVALID_PARAMETER, what + " is not a live tensor");
            }
            if (t->meta.dtype != want.dtype) return rejected(OH_NN_INVALID_PARAMETER, what + " has the wrong data type");
            size_t bytes = 0;
            byte_size(want, &bytes);
            if (t->bytes != bytes) {
                return rejected(OH_NN_INVALID_PARAMETER, what + " holds " + std::to_string(t->bytes) + " bytes, expected " +
                                                             std::to_string(bytes));
            }
            if (t->meta.shape != want.shape) {
                return rejected(OH_NN_INVALID_PARAMETER,
                                what + " has shape " + shape_text(t->meta.shape) + ", expected " + shape_text(want.shape));
            }
            return OH_NN_SUCCESS;
        };
        for (size_t i = 0; i < inputCount; ++i) {
            rc = matches(inputTensor[i], p.tensors[p.inputs[i]], "input " + std::to_string(i));
            if (rc != OH_NN_SUCCESS) return rc;
            ins.push_back(inputTensor[i]->buffer);
        }
        for (size_t i = 0; i < outputCount; ++i) {
            TensorMeta want = p.tensors[p.outputs[i]];
            want.shape = reported_output_shape(want.shape, wrong_size);
            rc = matches(outputTensor[i], want, "output " + std::to_string(i));
            if (rc != OH_NN_SUCCESS) return rc;
            outs.push_back(outputTensor[i]->buffer);
        }
        if (st.faults.run_fail) return rejected(OH_NN_FAILED, "injected fault run_fail");
        if (st.faults.fail_after >= 0 && st.device_runs >= st.faults.fail_after) {
            return rejected(OH_NN_FAILED, "device lost (injected fault fail_after:" + std::to_string(st.faults.fail_after) + ")");
        }
        ++st.device_runs;
        // RunSync writes the actual output shapes into the output tensors' descriptors; with
        // static shapes they are what the caller passed.
        for (size_t i = 0; i < outputCount; ++i) {
            outputTensor[i]->meta.shape = reported_output_shape(p.tensors[p.outputs[i]].shape, wrong_size);
        }
        slow_us = st.faults.slow_us;
        threads = compute_threads(st.faults.threads);
        return OH_NN_SUCCESS;
    });
    if (checked != OH_NN_SUCCESS) return checked;
    // The arithmetic runs outside the lock, so other executors (and the stats) are not held up.
    if (slow_us > 0) usleep(slow_us);
    try {
        const RunCounts counts = run_program(*program, ins.data(), outs.data(), wrong_size, threads);
        bump(kRuns);
        bump(kOpsExecuted, counts.ops);
        bump(kMacs, counts.macs);
    } catch (...) {
        bump(kRunFailures);
        return fail(OH_NN_MEMORY_ERROR, fn, "out of memory");
    }
    clear_error();
    return OH_NN_SUCCESS;
}

OHAI_SIM_API void OH_NNExecutor_Destroy(OH_NNExecutor **executor) {
    static const char fn[] = "OH_NNExecutor_Destroy";
    guarded(fn, [&] {
        return destroy_handle(executor, kExecutor, kExecutorsAlive, fn, "executor");
    });
}

// ---------------------------------------------------------------------------------------------
// Tensors.

OHAI_SIM_API NN_Tensor *OH_NNTensor_Create(size_t deviceID, NN_TensorDesc *tensorDesc) {
    static const char fn[] = "OH_NNTensor_Create";
    return guarded_ptr<NN_Tensor>(fn, [&]() -> NN_Tensor * {
        Lock lock(state().mu);
        count_call(fn);
        if (check_handle(kTensorDesc, tensorDesc, fn) != OH_NN_SUCCESS) return nullptr;
        const Device *d = find_device(deviceID);
        if (d == nullptr) {
            fail(OH_NN_INVALID_PARAMETER, fn, "unknown device id");
            return nullptr;
        }
        if (!dtype_valid(tensorDesc->meta.dtype)) {
            fail(OH_NN_INVALID_PARAMETER, fn, "descriptor has no data type");
            return nullptr;
        }
        size_t bytes = 0;
        if (!byte_size(tensorDesc->meta, &bytes)) {
            fail(OH_NN_INVALID_PARAMETER, fn, "descriptor shape " + shape_text(tensorDesc->meta.shape) +
                                                  " is not concrete (CreateWithSize is for that)");
            return nullptr;
        }
        auto *t = new NN_Tensor();
        t->meta = tensorDesc->meta;
        t->device_id = static_cast<size_t>(d->id);
        t->bytes = bytes;
        // Device memory: 64-byte aligned, zeroed, and rounded up so the allocation is never 0 bytes.
        const size_t alloc = (bytes + 63) / 64 * 64;
        t->buffer = static_cast<uint8_t *>(std::aligned_alloc(64, alloc == 0 ? 64 : alloc));
        if (t->buffer == nullptr) {
            delete t;
            fail(OH_NN_MEMORY_ERROR, fn, "out of memory");
            return nullptr;
        }
        std::memset(t->buffer, 0, bytes);
        add_live(kTensor, t);
        bump(kTensorsAlive);
        clear_error();
        return t;
    });
}

OHAI_SIM_API void *OH_NNTensor_GetDataBuffer(const NN_Tensor *tensor) {
    static const char fn[] = "OH_NNTensor_GetDataBuffer";
    return guarded_ptr<void>(fn, [&]() -> void * {
        Lock lock(state().mu);
        count_call(fn);
        if (check_handle(kTensor, tensor, fn) != OH_NN_SUCCESS) return nullptr;
        clear_error();
        return tensor->buffer;
    });
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNTensor_Destroy(NN_Tensor **tensor) {
    static const char fn[] = "OH_NNTensor_Destroy";
    return guarded(fn, [&] {
        return destroy_handle(tensor, kTensor, kTensorsAlive, fn, "tensor", [](NN_Tensor *t) { std::free(t->buffer); });
    });
}

// ---------------------------------------------------------------------------------------------
// Test functions (nnrt_sim.h).

OHAI_SIM_API const char *ohai_nnrt_sim_stats_json(void) {
    static thread_local std::string text;
    try {
        text = stats_json();
    } catch (...) {
        text = "{}";
    }
    return text.c_str();
}

OHAI_SIM_API long long ohai_nnrt_sim_stat(const char *key) {
    try {
        return key == nullptr ? -1 : stat(key);
    } catch (...) {
        return -1;
    }
}

OHAI_SIM_API void ohai_nnrt_sim_reset_stats(void) { reset_stats(); }

OHAI_SIM_API int ohai_nnrt_sim_reload_faults(void) {
    try {
        return reload_faults();
    } catch (...) {
        return -1;
    }
}

OHAI_SIM_API const char *ohai_nnrt_sim_last_error(void) { return last_error(); }

// Every exported function has exactly the type the adapter's PFN_ declares.
#define OHAI_SIM_SIGNATURE(name) \
    static_assert(std::is_same<decltype(&name), PFN_##name>::value, #name " does not match its PFN_ type")
OHAI_SIM_SIGNATURE(OH_NNDevice_GetAllDevicesID);
OHAI_SIM_SIGNATURE(OH_NNDevice_GetName);
OHAI_SIM_SIGNATURE(OH_NNDevice_GetType);
OHAI_SIM_SIGNATURE(OH_NNTensorDesc_Create);
OHAI_SIM_SIGNATURE(OH_NNTensorDesc_Destroy);
OHAI_SIM_SIGNATURE(OH_NNTensorDesc_SetDataType);
OHAI_SIM_SIGNATURE(OH_NNTensorDesc_SetShape);
OHAI_SIM_SIGNATURE(OH_NNTensorDesc_SetFormat);
OHAI_SIM_SIGNATURE(OH_NNTensorDesc_GetByteSize);
OHAI_SIM_SIGNATURE(OH_NNCompilation_Construct);
OHAI_SIM_SIGNATURE(OH_NNCompilation_SetDevice);
OHAI_SIM_SIGNATURE(OH_NNCompilation_SetCache);
OHAI_SIM_SIGNATURE(OH_NNCompilation_SetPerformanceMode);
OHAI_SIM_SIGNATURE(OH_NNCompilation_EnableFloat16);
OHAI_SIM_SIGNATURE(OH_NNCompilation_Build);
OHAI_SIM_SIGNATURE(OH_NNCompilation_Destroy);
OHAI_SIM_SIGNATURE(OH_NNExecutor_Construct);
OHAI_SIM_SIGNATURE(OH_NNExecutor_CreateInputTensorDesc);
OHAI_SIM_SIGNATURE(OH_NNExecutor_CreateOutputTensorDesc);
OHAI_SIM_SIGNATURE(OH_NNExecutor_RunSync);
OHAI_SIM_SIGNATURE(OH_NNExecutor_Destroy);
OHAI_SIM_SIGNATURE(OH_NNTensor_Create);
OHAI_SIM_SIGNATURE(OH_NNTensor_GetDataBuffer);
OHAI_SIM_SIGNATURE(OH_NNTensor_Destroy);
OHAI_SIM_SIGNATURE(ohai_nnrt_sim_stats_json);
OHAI_SIM_SIGNATURE(ohai_nnrt_sim_stat);
OHAI_SIM_SIGNATURE(ohai_nnrt_sim_reset_stats);
OHAI_SIM_SIGNATURE(ohai_nnrt_sim_reload_faults);
OHAI_SIM_SIGNATURE(ohai_nnrt_sim_last_error);
