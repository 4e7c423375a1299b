#include "nnrt_matmul.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

namespace ohai::nnrt {

namespace {

std::string code_text(const char * what, OH_NN_ReturnCode rc) {
    return std::string(what) + " failed (OH_NN_ReturnCode " + std::to_string(static_cast<int>(rc)) + ")";
}

// Owns what building the model needs, whatever step fails.
struct BuildState {
    const NnrtApi & api;
    OH_NNModel * model = nullptr;
    OH_NNCompilation * compilation = nullptr;
    std::vector<NN_TensorDesc *> descs;
    ~BuildState() {
        for (auto * d : descs) api.OH_NNTensorDesc_Destroy(&d);
        if (compilation) api.OH_NNCompilation_Destroy(&compilation);
        if (model) api.OH_NNModel_Destroy(&model);
    }
};

// FNV-1a over the weight and the shape: names the executor's own cache subdirectory.
uint64_t executor_fingerprint(const void * weight, size_t bytes, const MatMulShape & shape, OH_NN_DataType type) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](const void * p, size_t n) {
        const auto * b = static_cast<const unsigned char *>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    const int64_t dims[] = {shape.n, shape.k, shape.rows, static_cast<int64_t>(type), 1 /* layout version */};
    mix(dims, sizeof dims);
    mix(weight, bytes);
    return h;
}

// Failures that say nothing about the device: out of memory, a bad cache directory.
bool is_device_fault(OH_NN_ReturnCode rc) {
    return rc != OH_NN_MEMORY_ERROR && rc != OH_NN_INVALID_PATH && rc != OH_NN_SAVE_CACHE_EXCEPTION;
}

}  // namespace

std::unique_ptr<NnrtMatMul> NnrtMatMul::build(const NnrtApi & api, size_t device, const MatMulShape & shape,
                                              const void * weight, OH_NN_DataType weight_type,
                                              const std::string & cache_dir, bool known_supported,
                                              std::string & error, bool & device_fault) {
    device_fault = false;
    const size_t wsize = weight_type == OH_NN_FLOAT16 ? 2 : 4;
    if (shape.n <= 0 || shape.k <= 0 || shape.rows <= 0 || shape.n > INT32_MAX || shape.k > INT32_MAX ||
        shape.rows > INT32_MAX || (weight_type != OH_NN_FLOAT16 && weight_type != OH_NN_FLOAT32)) {
        error = "unsupported matrix shape or type";
        return nullptr;
    }
    BuildState s{api};
    s.model = api.OH_NNModel_Construct();
    if (!s.model) {
        error = "OH_NNModel_Construct failed";
        return nullptr;
    }
    // Tensors in the order they are added: 0 input, 1 weight, 2 activation parameter, 3 output.
    auto add = [&](OH_NN_DataType type, std::vector<int32_t> dims) -> bool {
        NN_TensorDesc * d = api.OH_NNTensorDesc_Create();
        if (!d) return false;
        s.descs.push_back(d);
        OH_NN_ReturnCode rc = api.OH_NNTensorDesc_SetDataType(d, type);
        if (rc == OH_NN_SUCCESS && !dims.empty()) rc = api.OH_NNTensorDesc_SetShape(d, dims.data(), dims.size());
        if (rc == OH_NN_SUCCESS) rc = api.OH_NNTensorDesc_SetFormat(d, OH_NN_FORMAT_ND);
        if (rc == OH_NN_SUCCESS) rc = api.OH_NNModel_AddTensorToModel(s.model, d);
        if (rc != OH_NN_SUCCESS) error = code_text("adding a tensor to the model", rc);
        return rc == OH_NN_SUCCESS;
    };
    const int32_t rows = static_cast<int32_t>(shape.rows), n = static_cast<int32_t>(shape.n), k = static_cast<int32_t>(shape.k);
    if (!add(OH_NN_FLOAT32, {rows, k}) || !add(weight_type, {n, k}) || !add(OH_NN_INT8, {}) ||
        !add(OH_NN_FLOAT32, {rows, n})) {
        if (error.empty()) error = "OH_NNTensorDesc_Create failed";
        return nullptr;
    }
    const size_t weight_bytes = static_cast<size_t>(shape.n * shape.k) * wsize;
    OH_NN_ReturnCode rc = api.OH_NNModel_SetTensorData(s.model, 1, weight, weight_bytes);
    if (rc != OH_NN_SUCCESS) return error = code_text("OH_NNModel_SetTensorData (weight)", rc), nullptr;
    // Parameters are typed and filled before AddOperation, which reads their values.
    const int8_t no_activation = OH_NN_FUSED_NONE;
    rc = api.OH_NNModel_SetTensorType(s.model, 2, OH_NN_FULL_CONNECTION_ACTIVATIONTYPE);
    if (rc == OH_NN_SUCCESS) rc = api.OH_NNModel_SetTensorData(s.model, 2, &no_activation, sizeof no_activation);
    if (rc != OH_NN_SUCCESS) return error = code_text("setting the activation parameter", rc), nullptr;
    uint32_t param_index[] = {2}, input_index[] = {0, 1}, output_index[] = {3}, model_inputs[] = {0};
    const OH_NN_UInt32Array params{param_index, 1}, inputs{input_index, 2}, outputs{output_index, 1},
        graph_inputs{model_inputs, 1};
    rc = api.OH_NNModel_AddOperation(s.model, OH_NN_OPS_FULL_CONNECTION, &params, &inputs, &outputs);
    if (rc != OH_NN_SUCCESS) return error = code_text("OH_NNModel_AddOperation(FULL_CONNECTION)", rc), nullptr;
    rc = api.OH_NNModel_SpecifyInputsAndOutputs(s.model, &graph_inputs, &outputs);
    if (rc == OH_NN_SUCCESS) rc = api.OH_NNModel_Finish(s.model);
    if (rc != OH_NN_SUCCESS) return error = code_text("finishing the model", rc), nullptr;

    if (!known_supported) {
        const bool * supported = nullptr;
        uint32_t op_count = 0;
        rc = api.OH_NNModel_GetAvailableOperations(s.model, device, &supported, &op_count);
        if (rc != OH_NN_SUCCESS) {
            device_fault = is_device_fault(rc);
            return error = code_text("OH_NNModel_GetAvailableOperations", rc), nullptr;
        }
        if (op_count != 1 || supported == nullptr || !supported[0]) {
            error = "unsupported: the device does not run FULL_CONNECTION with these types";
            return nullptr;
        }
    }

    s.compilation = api.OH_NNCompilation_Construct(s.model);
    if (!s.compilation) return error = "OH_NNCompilation_Construct failed", nullptr;
    rc = api.OH_NNCompilation_SetDevice(s.compilation, device);
    if (rc != OH_NN_SUCCESS) return error = code_text("OH_NNCompilation_SetDevice", rc), nullptr;
    if (!cache_dir.empty() && api.OH_NNCompilation_SetCache) {
        char name[32];
        std::snprintf(name, sizeof name, "/ohai-%016llx",
                      static_cast<unsigned long long>(executor_fingerprint(weight, weight_bytes, shape, weight_type)));
        const std::string dir = cache_dir + name;
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            return error = "cannot create the NNRt cache directory " + dir + ": " + std::strerror(errno), nullptr;
        rc = api.OH_NNCompilation_SetCache(s.compilation, dir.c_str(), 1);
        if (rc != OH_NN_SUCCESS) return error = code_text("OH_NNCompilation_SetCache", rc), nullptr;
    }
    if (api.OH_NNCompilation_SetPerformanceMode)
        api.OH_NNCompilation_SetPerformanceMode(s.compilation, OH_NN_PERFORMANCE_EXTREME);   // a hint; may be refused
    rc = api.OH_NNCompilation_Build(s.compilation);
    if (rc != OH_NN_SUCCESS) {
        device_fault = is_device_fault(rc);
        return error = code_text("OH_NNCompilation_Build", rc), nullptr;
    }

    std::unique_ptr<NnrtMatMul> mm(new NnrtMatMul(api, shape));
    mm->executor_ = api.OH_NNExecutor_Construct(s.compilation);
    if (!mm->executor_) return device_fault = true, error = "OH_NNExecutor_Construct failed", nullptr;
    // The executor's own descriptors decide the tensors; they must be exactly the shapes we
    // compiled, or copying into them would overrun.
    auto make_tensor = [&](bool is_input, size_t expected_bytes) -> NN_Tensor * {
        NN_TensorDesc * d = is_input ? api.OH_NNExecutor_CreateInputTensorDesc(mm->executor_, 0)
                                     : api.OH_NNExecutor_CreateOutputTensorDesc(mm->executor_, 0);
        if (!d) return error = "creating the executor's tensor descriptor failed", nullptr;
        size_t bytes = 0;
        NN_Tensor * t = nullptr;
        const OH_NN_ReturnCode r = api.OH_NNTensorDesc_GetByteSize(d, &bytes);
        if (r != OH_NN_SUCCESS) {
            error = code_text("OH_NNTensorDesc_GetByteSize", r);
        } else if (bytes != expected_bytes) {
            // Copying into (or out of) it would overrun: this device is not behaving.
            device_fault = true;
            error = std::string("the device's ") + (is_input ? "input" : "output") + " is " + std::to_string(bytes) +
                    " bytes, expected " + std::to_string(expected_bytes);
        } else if (!(t = api.OH_NNTensor_Create(device, d))) {
            error = "OH_NNTensor_Create failed";
        }
        api.OH_NNTensorDesc_Destroy(&d);
        return t;
    };
    mm->input_ = make_tensor(true, static_cast<size_t>(shape.rows * shape.k) * sizeof(float));
    if (!mm->input_) return nullptr;
    mm->output_ = make_tensor(false, static_cast<size_t>(shape.rows * shape.n) * sizeof(float));
    if (!mm->output_) return nullptr;
    return mm;
}

NnrtMatMul::~NnrtMatMul() {
    if (input_) api_.OH_NNTensor_Destroy(&input_);
    if (output_) api_.OH_NNTensor_Destroy(&output_);
    if (executor_) api_.OH_NNExecutor_Destroy(&executor_);
}

bool NnrtMatMul::run(const float * x, size_t x_stride, int64_t rows_used, float * y, size_t y_stride, std::string & error,
                     double * copy_ms) {
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    if (rows_used <= 0 || rows_used > shape_.rows) {
        error = "row count outside the compiled shape";
        return false;
    }
    auto * in = static_cast<float *>(api_.OH_NNTensor_GetDataBuffer(input_));
    auto * out = static_cast<float *>(api_.OH_NNTensor_GetDataBuffer(output_));
    if (!in || !out) {
        error = "OH_NNTensor_GetDataBuffer returned null";
        return false;
    }
    const size_t k = static_cast<size_t>(shape_.k), n = static_cast<size_t>(shape_.n);
    const auto t0 = Clock::now();
    for (int64_t r = 0; r < rows_used; ++r) std::memcpy(in + r * k, x + r * x_stride, k * sizeof(float));
    // Padding rows: zeros, so that a device never computes on stale data.
    std::memset(in + rows_used * k, 0, static_cast<size_t>(shape_.rows - rows_used) * k * sizeof(float));
    const auto t1 = Clock::now();
    NN_Tensor * inputs[] = {input_};
    NN_Tensor * outputs[] = {output_};
    const OH_NN_ReturnCode rc = api_.OH_NNExecutor_RunSync(executor_, inputs, 1, outputs, 1);
    if (rc != OH_NN_SUCCESS) {
        error = code_text("OH_NNExecutor_RunSync", rc);
        return false;
    }
    const auto t2 = Clock::now();
    for (int64_t r = 0; r < rows_used; ++r) std::memcpy(y + r * y_stride, out + r * n, n * sizeof(float));
    if (copy_ms) *copy_ms = ms(t1 - t0) + ms(Clock::now() - t2);
    return true;
}

}  // namespace ohai::nnrt
