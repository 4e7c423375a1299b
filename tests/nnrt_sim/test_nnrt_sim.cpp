// The simulated NNRt device (tests/nnrt_sim/), loaded the way the adapter loads NNRt: dlopen of
// the runtime library and then the core library by path (RTLD_NOW | RTLD_LOCAL), every function
// resolved with dlsym into the PFN_ types of plugin/nnrt/nnrt_api.h. Checks that it computes
// right (FULL_CONNECTION with F16 weights, MATMUL with F32 weights), that it rejects what the real
// runtime rejects with the same codes, that each injected fault does what nnrt_sim.h says, and
// that its counters add up with nothing left alive at the end.
//
// Usage: test_nnrt_sim [<directory of the simulator's libraries>]
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "check.h"
#include "nnrt_api.h"
#include "nnrt_sim.h"

namespace {

#define OHAI_CORE_FUNCTIONS(X)                                                                                    \
    X(OH_NNDevice_GetAllDevicesID) X(OH_NNDevice_GetName) X(OH_NNDevice_GetType) X(OH_NNTensorDesc_Create)      \
    X(OH_NNTensorDesc_Destroy) X(OH_NNTensorDesc_SetDataType) X(OH_NNTensorDesc_SetShape)                         \
    X(OH_NNTensorDesc_SetFormat) X(OH_NNTensorDesc_GetByteSize) X(OH_NNCompilation_Construct)                     \
    X(OH_NNCompilation_SetDevice) X(OH_NNCompilation_SetCache) X(OH_NNCompilation_SetPerformanceMode)             \
    X(OH_NNCompilation_EnableFloat16) X(OH_NNCompilation_Build) X(OH_NNCompilation_Destroy)                       \
    X(OH_NNExecutor_Construct) X(OH_NNExecutor_CreateInputTensorDesc) X(OH_NNExecutor_CreateOutputTensorDesc)     \
    X(OH_NNExecutor_RunSync) X(OH_NNExecutor_Destroy) X(OH_NNTensor_Create) X(OH_NNTensor_GetDataBuffer)          \
    X(OH_NNTensor_Destroy)
#define OHAI_RUNTIME_FUNCTIONS(X)                                                                                 \
    X(OH_NNModel_Construct) X(OH_NNModel_AddTensorToModel) X(OH_NNModel_SetTensorData) X(OH_NNModel_SetTensorType) \
    X(OH_NNModel_AddOperation) X(OH_NNModel_SpecifyInputsAndOutputs) X(OH_NNModel_Finish)                          \
    X(OH_NNModel_GetAvailableOperations) X(OH_NNModel_Destroy)
#define OHAI_SIM_FUNCTIONS(X)                                                                                     \
    X(ohai_nnrt_sim_stats_json) X(ohai_nnrt_sim_stat) X(ohai_nnrt_sim_reset_stats) X(ohai_nnrt_sim_reload_faults)  \
    X(ohai_nnrt_sim_last_error)

struct Nnrt {
    void *runtime = nullptr;
    void *core = nullptr;
#define OHAI_DECLARE(name) PFN_##name name = nullptr;
    OHAI_CORE_FUNCTIONS(OHAI_DECLARE)
    OHAI_RUNTIME_FUNCTIONS(OHAI_DECLARE)
    OHAI_SIM_FUNCTIONS(OHAI_DECLARE)
#undef OHAI_DECLARE
};

Nnrt nn;
std::string g_dir;
std::string g_tmp;

template <class T>
bool resolve(void *handle, const char *name, T *out) {
    void *p = dlsym(handle, name);
    *out = reinterpret_cast<T>(p);
    if (p == nullptr) std::fprintf(stderr, "missing symbol %s\n", name);
    return p != nullptr;
}

// Runtime first (it registers the device), then core, as the adapter does.
bool load(Nnrt *api) {
    const std::string rt = g_dir + "/libneural_network_runtime.so", core = g_dir + "/libneural_network_core.so";
    api->runtime = dlopen(rt.c_str(), RTLD_NOW | RTLD_LOCAL);
    api->core = dlopen(core.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (api->runtime == nullptr || api->core == nullptr) {
        std::fprintf(stderr, "dlopen failed: %s\n", dlerror());
        return false;
    }
    bool ok = true;
#define OHAI_RESOLVE_CORE(name) ok &= resolve(api->core, #name, &api->name);
#define OHAI_RESOLVE_RUNTIME(name) ok &= resolve(api->runtime, #name, &api->name);
    OHAI_CORE_FUNCTIONS(OHAI_RESOLVE_CORE)
    OHAI_RUNTIME_FUNCTIONS(OHAI_RESOLVE_RUNTIME)
    OHAI_SIM_FUNCTIONS(OHAI_RESOLVE_CORE)
#undef OHAI_RESOLVE_CORE
#undef OHAI_RESOLVE_RUNTIME
    return ok;
}

long long stat(const char *key) { return nn.ohai_nnrt_sim_stat(key); }

void set_faults(const char *value) {
    if (value == nullptr) {
        unsetenv("OHAI_NNRT_SIM_FAULT");
    } else {
        setenv("OHAI_NNRT_SIM_FAULT", value, 1);
    }
    CHECK(nn.ohai_nnrt_sim_reload_faults() == 0);
}

// ---- data --------------------------------------------------------------------------------------

// Our own half -> float, independent of the simulator's.
float f16_to_f32(uint16_t h) {
    const int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    const float mag = exp == 0 ? std::ldexp(static_cast<float>(man), -24) : std::ldexp(static_cast<float>(man | 0x400), exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

std::mt19937 g_rng(1234);

std::vector<float> random_f32(size_t n) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float &x : v) x = d(g_rng);
    return v;
}

// Normal halves in about ±[1/32, 2): random sign, exponent and mantissa bits.
std::vector<uint16_t> random_f16(size_t n) {
    std::uniform_int_distribution<int> sign(0, 1), exp(10, 15), man(0, 1023);
    std::vector<uint16_t> v(n);
    for (uint16_t &h : v) h = static_cast<uint16_t>((sign(g_rng) << 15) | (exp(g_rng) << 10) | man(g_rng));
    return v;
}

std::vector<float> widen(const std::vector<uint16_t> &h) {
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) f[i] = f16_to_f32(h[i]);
    return f;
}

// C[M, N] = A[M, K] · B[N, K]ᵀ, in double.
std::vector<float> reference_nt(const std::vector<float> &a, const std::vector<float> &b, size_t m, size_t n, size_t k) {
    std::vector<float> c(m * n);
    for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < n; ++j) {
            double s = 0;
            for (size_t p = 0; p < k; ++p) s += static_cast<double>(a[i * k + p]) * b[j * k + p];
            c[i * n + j] = static_cast<float>(s);
        }
    }
    return c;
}

std::vector<float> transposed(const std::vector<float> &x, size_t rows, size_t cols) {
    std::vector<float> t(x.size());
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) t[c * rows + r] = x[r * cols + c];
    }
    return t;
}

bool close(const std::vector<float> &got, const std::vector<float> &want, float rel) {
    if (got.size() != want.size()) return false;
    for (size_t i = 0; i < got.size(); ++i) {
        if (!(std::fabs(got[i] - want[i]) <= rel * (1.0f + std::fabs(want[i])))) {
            std::fprintf(stderr, "element %zu: got %g, want %g\n", i, got[i], want[i]);
            return false;
        }
    }
    return true;
}

// ---- model building --------------------------------------------------------------------------

NN_TensorDesc *make_desc(OH_NN_DataType type, const std::vector<int32_t> &shape) {
    NN_TensorDesc *d = nn.OH_NNTensorDesc_Create();
    CHECK(d != nullptr);
    CHECK(nn.OH_NNTensorDesc_SetDataType(d, type) == OH_NN_SUCCESS);
    if (!shape.empty()) CHECK(nn.OH_NNTensorDesc_SetShape(d, shape.data(), shape.size()) == OH_NN_SUCCESS);
    return d;
}

OH_NN_UInt32Array array(std::vector<uint32_t> &v) {
    return OH_NN_UInt32Array{v.empty() ? nullptr : v.data(), static_cast<uint32_t>(v.size())};
}

struct Builder {
    OH_NNModel *m = nullptr;
    uint32_t count = 0;

    Builder() : m(nn.OH_NNModel_Construct()) { CHECK(m != nullptr); }

    uint32_t tensor(OH_NN_DataType type, const std::vector<int32_t> &shape) {
        NN_TensorDesc *d = make_desc(type, shape);
        CHECK(nn.OH_NNModel_AddTensorToModel(m, d) == OH_NN_SUCCESS);
        CHECK(nn.OH_NNTensorDesc_Destroy(&d) == OH_NN_SUCCESS);
        CHECK(d == nullptr);
        return count++;
    }

    // A scalar parameter, typed and valued as AddOperation requires.
    template <class T>
    uint32_t param(OH_NN_TensorType role, OH_NN_DataType type, T value, std::vector<int32_t> shape = {}) {
        const uint32_t i = tensor(type, shape);
        CHECK(nn.OH_NNModel_SetTensorType(m, i, role) == OH_NN_SUCCESS);
        CHECK(nn.OH_NNModel_SetTensorData(m, i, &value, sizeof value) == OH_NN_SUCCESS);
        return i;
    }

    template <class T>
    OH_NN_ReturnCode data(uint32_t i, const std::vector<T> &v) {
        return nn.OH_NNModel_SetTensorData(m, i, v.data(), v.size() * sizeof(T));
    }

    OH_NN_ReturnCode op(OH_NN_OperationType type, std::vector<uint32_t> params, std::vector<uint32_t> ins,
                        std::vector<uint32_t> outs) {
        const OH_NN_UInt32Array p = array(params), i = array(ins), o = array(outs);
        return nn.OH_NNModel_AddOperation(m, type, &p, &i, &o);
    }

    OH_NN_ReturnCode io(std::vector<uint32_t> ins, std::vector<uint32_t> outs) {
        const OH_NN_UInt32Array i = array(ins), o = array(outs);
        return nn.OH_NNModel_SpecifyInputsAndOutputs(m, &i, &o);
    }

    void destroy() {
        nn.OH_NNModel_Destroy(&m);
        CHECK(m == nullptr);
    }
};

// y[M, N] = x[M, K] · W[N, K]ᵀ, W constant F16; `axis` adds the AXIS parameter (value 1).
Builder fc_model(size_t m, size_t n, size_t k, const std::vector<uint16_t> &w, OH_NN_DataType out_type, bool axis) {
    Builder b;
    const uint32_t x = b.tensor(OH_NN_FLOAT32, {int32_t(m), int32_t(k)});
    const uint32_t wt = b.tensor(OH_NN_FLOAT16, {int32_t(n), int32_t(k)});
    CHECK(b.data(wt, w) == OH_NN_SUCCESS);
    std::vector<uint32_t> params;
    if (axis) params.push_back(b.param(OH_NN_FULL_CONNECTION_AXIS, OH_NN_INT64, int64_t{1}));
    params.push_back(b.param(OH_NN_FULL_CONNECTION_ACTIVATIONTYPE, OH_NN_INT8, int8_t{OH_NN_FUSED_NONE}, {1}));
    const uint32_t y = b.tensor(out_type, {int32_t(m), int32_t(n)});
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, params, {x, wt}, {y}) == OH_NN_SUCCESS);
    CHECK(b.io({x}, {y}) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNModel_Finish(b.m) == OH_NN_SUCCESS);
    return b;
}

// out = a · B with B constant F32 [K, N] (or [N, K] with transpose_b); a is [batch..., M, K].
Builder matmul_model(const std::vector<int32_t> &a_shape, size_t n, const std::vector<float> &bw, bool transpose_b) {
    Builder b;
    const int32_t k = a_shape.back();
    const uint32_t a = b.tensor(OH_NN_FLOAT32, a_shape);
    const uint32_t w = b.tensor(OH_NN_FLOAT32, transpose_b ? std::vector<int32_t>{int32_t(n), k} : std::vector<int32_t>{k, int32_t(n)});
    CHECK(b.data(w, bw) == OH_NN_SUCCESS);
    std::vector<uint32_t> params;   // none: {NULL, 0}
    if (transpose_b) params.push_back(b.param(OH_NN_MATMUL_TRANSPOSE_B, OH_NN_BOOL, uint8_t{1}));
    std::vector<int32_t> out_shape = a_shape;
    out_shape.back() = int32_t(n);
    const uint32_t out = b.tensor(OH_NN_FLOAT32, out_shape);
    CHECK(b.op(OH_NN_OPS_MATMUL, params, {a, w}, {out}) == OH_NN_SUCCESS);
    CHECK(b.io({a}, {out}) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNModel_Finish(b.m) == OH_NN_SUCCESS);
    return b;
}

// ---- compile and run ---------------------------------------------------------------------------

OH_NNCompilation *compile(const OH_NNModel *m, OH_NN_ReturnCode expect = OH_NN_SUCCESS, const char *cache = nullptr) {
    OH_NNCompilation *c = nn.OH_NNCompilation_Construct(m);
    CHECK(c != nullptr);
    if (c == nullptr) return nullptr;
    CHECK(nn.OH_NNCompilation_SetDevice(c, OHAI_NNRT_SIM_DEVICE_ID) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNCompilation_SetPerformanceMode(c, OH_NN_PERFORMANCE_HIGH) == OH_NN_SUCCESS);
    if (cache != nullptr) CHECK(nn.OH_NNCompilation_SetCache(c, cache, 1) == OH_NN_SUCCESS);
    const OH_NN_ReturnCode rc = nn.OH_NNCompilation_Build(c);
    if (rc != expect) std::fprintf(stderr, "Build: %d (%s)\n", rc, nn.ohai_nnrt_sim_last_error());
    CHECK(rc == expect);
    return c;
}

struct Run {
    OH_NNExecutor *exec = nullptr;
    std::vector<NN_Tensor *> in, out;

    void make(OH_NNCompilation *c, size_t nin, size_t nout) {
        exec = nn.OH_NNExecutor_Construct(c);
        CHECK(exec != nullptr);
        for (size_t i = 0; i < nin; ++i) in.push_back(tensor_from(nn.OH_NNExecutor_CreateInputTensorDesc(exec, i)));
        for (size_t i = 0; i < nout; ++i) out.push_back(tensor_from(nn.OH_NNExecutor_CreateOutputTensorDesc(exec, i)));
    }

    static NN_Tensor *tensor_from(NN_TensorDesc *d) {
        CHECK(d != nullptr);
        NN_Tensor *t = nn.OH_NNTensor_Create(0, d);   // 0: the first device
        CHECK(t != nullptr);
        CHECK(nn.OH_NNTensorDesc_Destroy(&d) == OH_NN_SUCCESS);
        return t;
    }

    template <class T>
    void fill(size_t i, const std::vector<T> &v) {
        std::memcpy(nn.OH_NNTensor_GetDataBuffer(in[i]), v.data(), v.size() * sizeof(T));
    }

    OH_NN_ReturnCode run() { return nn.OH_NNExecutor_RunSync(exec, in.data(), in.size(), out.data(), out.size()); }

    std::vector<float> output_f32(size_t i, size_t n) {
        const auto *p = static_cast<const float *>(nn.OH_NNTensor_GetDataBuffer(out[i]));
        return std::vector<float>(p, p + n);
    }

    std::vector<float> output_f16(size_t i, size_t n) {
        const auto *p = static_cast<const uint16_t *>(nn.OH_NNTensor_GetDataBuffer(out[i]));
        return widen(std::vector<uint16_t>(p, p + n));
    }

    void destroy() {
        for (NN_Tensor *&t : in) CHECK(nn.OH_NNTensor_Destroy(&t) == OH_NN_SUCCESS && t == nullptr);
        for (NN_Tensor *&t : out) CHECK(nn.OH_NNTensor_Destroy(&t) == OH_NN_SUCCESS && t == nullptr);
        in.clear();
        out.clear();
        nn.OH_NNExecutor_Destroy(&exec);
        CHECK(exec == nullptr);
    }
};

// ---- the checks --------------------------------------------------------------------------------

// Loading core alone shows no device: the runtime library's static initializer registers it.
void core_alone_has_no_device() {
    const std::string core = g_dir + "/libneural_network_core.so";
    void *h = dlopen(core.c_str(), RTLD_NOW | RTLD_LOCAL);
    CHECK(h != nullptr);
    PFN_OH_NNDevice_GetAllDevicesID get_ids = nullptr;
    CHECK(resolve(h, "OH_NNDevice_GetAllDevicesID", &get_ids));
    const size_t *ids = nullptr;
    uint32_t count = 99;
    CHECK(get_ids(&ids, &count) == OH_NN_SUCCESS);
    CHECK(count == 0);
    // Model building is the runtime library's, as on a real system.
    CHECK(dlsym(h, "OH_NNModel_Construct") == nullptr);
    CHECK(dlsym(h, "_ZN8ohai_sim5stateEv") == nullptr);   // internals are hidden
    CHECK(load(&nn));
    ids = nullptr;
    CHECK(get_ids(&ids, &count) == OH_NN_SUCCESS);   // the same core, now with the device
    CHECK(count == 1);
    CHECK(dlclose(h) == 0);   // nn still holds core through its own handles
}

void devices() {
    const size_t *ids = nullptr;
    uint32_t count = 0;
    CHECK(nn.OH_NNDevice_GetAllDevicesID(nullptr, &count) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNDevice_GetAllDevicesID(&ids, nullptr) == OH_NN_INVALID_PARAMETER);
    const size_t bogus = 7;
    const size_t *not_null = &bogus;
    CHECK(nn.OH_NNDevice_GetAllDevicesID(&not_null, &count) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNDevice_GetAllDevicesID(&ids, &count) == OH_NN_SUCCESS);
    CHECK(count == 1 && ids != nullptr);
    if (count != 1 || ids == nullptr) return;
    CHECK(ids[0] == OHAI_NNRT_SIM_DEVICE_ID && ids[0] != 0);

    const char *name = nullptr;
    CHECK(nn.OH_NNDevice_GetName(ids[0], &name) == OH_NN_SUCCESS);
    CHECK(name != nullptr && std::strcmp(name, OHAI_NNRT_SIM_DEVICE_NAME) == 0);
    const char *again = name;   // *name must be NULL on entry
    CHECK(nn.OH_NNDevice_GetName(ids[0], &again) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNDevice_GetName(ids[0], nullptr) == OH_NN_INVALID_PARAMETER);
    const char *first = nullptr;
    CHECK(nn.OH_NNDevice_GetName(0, &first) == OH_NN_SUCCESS && first == name);   // 0: the first device
    const char *none = nullptr;
    CHECK(nn.OH_NNDevice_GetName(12345, &none) == OH_NN_INVALID_PARAMETER);

    OH_NN_DeviceType type = OH_NN_OTHERS;
    CHECK(nn.OH_NNDevice_GetType(ids[0], &type) == OH_NN_SUCCESS && type == OH_NN_ACCELERATOR);
    CHECK(nn.OH_NNDevice_GetType(12345, &type) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNDevice_GetType(ids[0], nullptr) == OH_NN_INVALID_PARAMETER);
}

void tensor_descriptors() {
    NN_TensorDesc *d = nn.OH_NNTensorDesc_Create();
    CHECK(d != nullptr);
    size_t bytes = 0;
    CHECK(nn.OH_NNTensorDesc_GetByteSize(d, &bytes) == OH_NN_INVALID_PARAMETER);   // no data type yet
    CHECK(nn.OH_NNTensorDesc_SetDataType(d, OH_NN_UNKNOWN) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetDataType(d, static_cast<OH_NN_DataType>(99)) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetDataType(nullptr, OH_NN_FLOAT32) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetDataType(d, OH_NN_FLOAT16) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNTensorDesc_GetByteSize(d, &bytes) == OH_NN_SUCCESS && bytes == 2);   // no shape: a scalar
    const int32_t eleven[11] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn.OH_NNTensorDesc_SetShape(d, eleven, 11) == OH_NN_INVALID_PARAMETER);   // at most 10 dimensions
    CHECK(nn.OH_NNTensorDesc_SetShape(d, eleven, 10) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNTensorDesc_SetShape(d, nullptr, 2) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetShape(d, eleven, 0) == OH_NN_INVALID_PARAMETER);
    const int32_t zero[2] = {3, 0}, below[2] = {3, -2}, dynamic[2] = {-1, 4}, good[2] = {3, 5};
    CHECK(nn.OH_NNTensorDesc_SetShape(d, zero, 2) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetShape(d, below, 2) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetShape(d, dynamic, 2) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNTensorDesc_GetByteSize(d, &bytes) == OH_NN_SUCCESS && bytes == 0);   // dynamic: no size yet
    CHECK(nn.OH_NNTensor_Create(0, d) == nullptr);   // a tensor needs a concrete shape
    CHECK(nn.OH_NNTensorDesc_SetShape(d, good, 2) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNTensorDesc_GetByteSize(d, &bytes) == OH_NN_SUCCESS && bytes == 30);
    CHECK(nn.OH_NNTensorDesc_GetByteSize(d, nullptr) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_SetFormat(d, OH_NN_FORMAT_ND) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNTensorDesc_SetFormat(d, static_cast<OH_NN_Format>(7)) == OH_NN_INVALID_PARAMETER);

    CHECK(nn.OH_NNTensor_Create(12345, d) == nullptr);   // unknown device
    CHECK(nn.OH_NNTensor_Create(0, nullptr) == nullptr);
    NN_Tensor *t = nn.OH_NNTensor_Create(OHAI_NNRT_SIM_DEVICE_ID, d);
    CHECK(t != nullptr);
    CHECK(nn.OH_NNTensor_GetDataBuffer(t) != nullptr);
    CHECK(nn.OH_NNTensor_GetDataBuffer(nullptr) == nullptr);
    CHECK(nn.OH_NNTensor_Destroy(nullptr) == OH_NN_INVALID_PARAMETER);
    NN_Tensor *stale_tensor = t;
    CHECK(nn.OH_NNTensor_Destroy(&t) == OH_NN_SUCCESS && t == nullptr);
    CHECK(nn.OH_NNTensor_Destroy(&t) == OH_NN_INVALID_PARAMETER);   // *tensor is NULL now

    const long long bad = stat("bad_handles");
    CHECK(nn.OH_NNTensor_Destroy(&stale_tensor) == OH_NN_INVALID_PARAMETER);   // already destroyed
    CHECK(stat("bad_handles") == bad + 1);

    CHECK(nn.OH_NNTensorDesc_Destroy(nullptr) == OH_NN_INVALID_PARAMETER);
    NN_TensorDesc *stale = d;
    CHECK(nn.OH_NNTensorDesc_Destroy(&d) == OH_NN_SUCCESS && d == nullptr);
    CHECK(nn.OH_NNTensorDesc_Destroy(&d) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_Destroy(&stale) == OH_NN_INVALID_PARAMETER);
    CHECK(stat("bad_handles") == bad + 2);
}

void full_connection_f16_weights() {
    const size_t m = 5, n = 37, k = 64;   // n not a multiple of the kernel's block
    const std::vector<uint16_t> w = random_f16(n * k);
    for (bool axis : {false, true}) {
        for (OH_NN_DataType out_type : {OH_NN_FLOAT32, OH_NN_FLOAT16}) {
            Builder b = fc_model(m, n, k, w, out_type, axis);
            const bool *supported = nullptr;
            uint32_t ops = 0;
            CHECK(nn.OH_NNModel_GetAvailableOperations(b.m, 0, &supported, &ops) == OH_NN_SUCCESS);
            CHECK(ops == 1 && supported != nullptr && supported[0]);
            OH_NNCompilation *c = compile(b.m);
            b.destroy();   // the model may go once Build is done
            Run r;
            r.make(c, 1, 1);
            nn.OH_NNCompilation_Destroy(&c);   // and the compilation once an executor exists
            CHECK(c == nullptr);
            const std::vector<float> x = random_f32(m * k);
            r.fill(0, x);
            CHECK(r.run() == OH_NN_SUCCESS);
            const std::vector<float> want = reference_nt(x, widen(w), m, n, k);
            if (out_type == OH_NN_FLOAT32) {
                CHECK(close(r.output_f32(0, m * n), want, 1e-5f));
            } else {
                CHECK(close(r.output_f16(0, m * n), want, 1e-3f));
            }
            r.destroy();
        }
    }
}

void matmul_f32_weights() {
    const size_t m = 6, n = 20, k = 24;
    for (bool transpose_b : {false, true}) {
        const std::vector<float> w = random_f32(n * k);   // [K, N], or [N, K] when transposed
        Builder b = matmul_model({int32_t(m), int32_t(k)}, n, w, transpose_b);
        OH_NNCompilation *c = compile(b.m);
        Run r;
        r.make(c, 1, 1);
        const std::vector<float> x = random_f32(m * k);
        r.fill(0, x);
        CHECK(r.run() == OH_NN_SUCCESS);
        const std::vector<float> w_nk = transpose_b ? w : transposed(w, k, n);
        CHECK(close(r.output_f32(0, m * n), reference_nt(x, w_nk, m, n, k), 1e-5f));
        r.destroy();
        nn.OH_NNCompilation_Destroy(&c);
        b.destroy();
    }
    // Batched: [2, M, K] · [K, N] with the 2-D weight broadcast over the batch.
    const std::vector<float> w = random_f32(n * k);
    Builder b = matmul_model({2, int32_t(m), int32_t(k)}, n, w, false);
    OH_NNCompilation *c = compile(b.m);
    b.destroy();
    Run r;
    r.make(c, 1, 1);
    nn.OH_NNCompilation_Destroy(&c);
    const std::vector<float> x = random_f32(2 * m * k);
    r.fill(0, x);
    CHECK(r.run() == OH_NN_SUCCESS);
    const std::vector<float> got = r.output_f32(0, 2 * m * n);
    for (size_t bi = 0; bi < 2; ++bi) {
        const std::vector<float> xb(x.begin() + bi * m * k, x.begin() + (bi + 1) * m * k);
        const std::vector<float> gb(got.begin() + bi * m * n, got.begin() + (bi + 1) * m * n);
        CHECK(close(gb, reference_nt(xb, transposed(w, k, n), m, n, k), 1e-5f));
    }
    r.destroy();
}

// Both operands are inputs, A transposed, F16 in and out.
void matmul_two_inputs() {
    const size_t m = 3, n = 4, k = 5;
    Builder b;
    const uint32_t a = b.tensor(OH_NN_FLOAT16, {int32_t(k), int32_t(m)});
    const uint32_t w = b.tensor(OH_NN_FLOAT32, {int32_t(k), int32_t(n)});
    const uint32_t ta = b.param(OH_NN_MATMUL_TRANSPOSE_A, OH_NN_BOOL, uint8_t{1});
    const uint32_t act = b.param(OH_NN_MATMUL_ACTIVATION_TYPE, OH_NN_INT8, int8_t{OH_NN_FUSED_NONE});
    const uint32_t out = b.tensor(OH_NN_FLOAT16, {int32_t(m), int32_t(n)});
    CHECK(b.op(OH_NN_OPS_MATMUL, {ta, act}, {a, w}, {out}) == OH_NN_SUCCESS);
    CHECK(b.io({a, w}, {out}) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNModel_Finish(b.m) == OH_NN_SUCCESS);
    OH_NNCompilation *c = compile(b.m);
    Run r;
    r.make(c, 2, 1);
    const std::vector<uint16_t> ah = random_f16(k * m);
    const std::vector<float> wf = random_f32(k * n);
    r.fill(0, ah);
    r.fill(1, wf);
    CHECK(r.run() == OH_NN_SUCCESS);
    const std::vector<float> want = reference_nt(transposed(widen(ah), k, m), transposed(wf, k, n), m, n, k);
    CHECK(close(r.output_f16(0, m * n), want, 1e-3f));
    r.destroy();
    nn.OH_NNCompilation_Destroy(&c);
    b.destroy();
}

// Large enough for the threaded kernel, with EnableFloat16 (operands at F16 precision).
void large_threaded_fp16() {
    setenv("OHAI_NNRT_SIM_THREADS", "2", 1);
    set_faults(nullptr);
    const size_t m = 64, n = 200, k = 256;
    const std::vector<uint16_t> w = random_f16(n * k);
    Builder b = fc_model(m, n, k, w, OH_NN_FLOAT32, false);
    OH_NNCompilation *c = nn.OH_NNCompilation_Construct(b.m);
    CHECK(nn.OH_NNCompilation_EnableFloat16(c, true) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNCompilation_Build(c) == OH_NN_SUCCESS);
    Run r;
    r.make(c, 1, 1);
    const std::vector<float> x = random_f32(m * k);
    r.fill(0, x);
    CHECK(r.run() == OH_NN_SUCCESS);
    CHECK(close(r.output_f32(0, m * n), reference_nt(x, widen(w), m, n, k), 2e-2f));
    r.destroy();
    nn.OH_NNCompilation_Destroy(&c);
    b.destroy();
    unsetenv("OHAI_NNRT_SIM_THREADS");
    set_faults(nullptr);
}

void model_building_rules() {
    Builder b;
    const uint32_t x = b.tensor(OH_NN_FLOAT32, {2, 4});
    const uint32_t w = b.tensor(OH_NN_FLOAT32, {4, 3});
    const uint32_t y = b.tensor(OH_NN_FLOAT32, {2, 3});
    const uint32_t dyn = b.tensor(OH_NN_FLOAT32, {-1, 4});
    const std::vector<float> wv(12, 0.5f);

    // AddTensorToModel: a descriptor needs a data type.
    NN_TensorDesc *untyped = nn.OH_NNTensorDesc_Create();
    CHECK(nn.OH_NNModel_AddTensorToModel(b.m, untyped) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_AddTensorToModel(nullptr, untyped) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_AddTensorToModel(b.m, nullptr) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNTensorDesc_Destroy(&untyped) == OH_NN_SUCCESS);

    // SetTensorData: exactly the byte size, once, never on a dynamic shape.
    CHECK(nn.OH_NNModel_SetTensorData(b.m, w, wv.data(), 11 * sizeof(float)) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_SetTensorData(b.m, w, wv.data(), 13 * sizeof(float)) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_SetTensorData(b.m, w, nullptr, 12 * sizeof(float)) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_SetTensorData(b.m, 99, wv.data(), 12 * sizeof(float)) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_SetTensorData(b.m, dyn, wv.data(), 12 * sizeof(float)) == OH_NN_INVALID_PARAMETER);
    CHECK(b.data(w, wv) == OH_NN_SUCCESS);
    CHECK(b.data(w, wv) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_SetTensorType(b.m, 99, OH_NN_TENSOR) == OH_NN_INVALID_PARAMETER);

    // Parameters: typed and valued before AddOperation, with the right type and size.
    const uint32_t untyped_param = b.tensor(OH_NN_BOOL, {});
    CHECK(nn.OH_NNModel_SetTensorData(b.m, untyped_param, "\1", 1) == OH_NN_SUCCESS);
    CHECK(b.op(OH_NN_OPS_MATMUL, {untyped_param}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);   // no SetTensorType
    const uint32_t valueless = b.tensor(OH_NN_BOOL, {});
    CHECK(nn.OH_NNModel_SetTensorType(b.m, valueless, OH_NN_MATMUL_TRANSPOSE_A) == OH_NN_SUCCESS);
    CHECK(b.op(OH_NN_OPS_MATMUL, {valueless}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);   // no SetTensorData
    const uint32_t int8_bool = b.param(OH_NN_MATMUL_TRANSPOSE_A, OH_NN_INT8, int8_t{0});
    CHECK(b.op(OH_NN_OPS_MATMUL, {int8_bool}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);   // BOOL expected
    const uint32_t two_bools = b.tensor(OH_NN_BOOL, {2});
    CHECK(nn.OH_NNModel_SetTensorType(b.m, two_bools, OH_NN_MATMUL_TRANSPOSE_B) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNModel_SetTensorData(b.m, two_bools, "\0\0", 2) == OH_NN_SUCCESS);
    CHECK(b.op(OH_NN_OPS_MATMUL, {two_bools}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);   // not a scalar
    const uint32_t fc_act = b.param(OH_NN_FULL_CONNECTION_ACTIVATIONTYPE, OH_NN_INT8, int8_t{0});
    CHECK(b.op(OH_NN_OPS_MATMUL, {fc_act}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);   // not MATMUL's parameter
    const uint32_t bad_fuse = b.param(OH_NN_MATMUL_ACTIVATION_TYPE, OH_NN_INT8, int8_t{9});
    CHECK(b.op(OH_NN_OPS_MATMUL, {bad_fuse}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);
    const uint32_t ta1 = b.param(OH_NN_MATMUL_TRANSPOSE_A, OH_NN_BOOL, uint8_t{0});
    const uint32_t ta2 = b.param(OH_NN_MATMUL_TRANSPOSE_A, OH_NN_BOOL, uint8_t{0});
    CHECK(b.op(OH_NN_OPS_MATMUL, {ta1, ta2}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);   // given twice

    // The arrays: {NULL, 0} for an empty list, 1..200 data tensors, in range, OH_NN_TENSOR, disjoint.
    std::vector<uint32_t> ins = {x, w}, outs = {y}, some = {ta1};
    OH_NN_UInt32Array in_arr = array(ins), out_arr = array(outs);
    OH_NN_UInt32Array empty_with_pointer{some.data(), 0}, null_with_size{nullptr, 1};
    CHECK(nn.OH_NNModel_AddOperation(b.m, OH_NN_OPS_MATMUL, nullptr, &in_arr, &out_arr) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_AddOperation(b.m, OH_NN_OPS_MATMUL, &empty_with_pointer, &in_arr, &out_arr) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_AddOperation(b.m, OH_NN_OPS_MATMUL, &null_with_size, &in_arr, &out_arr) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_AddOperation(nullptr, OH_NN_OPS_MATMUL, &in_arr, &in_arr, &out_arr) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, w}, {}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_ADD, {}, std::vector<uint32_t>(201, x), {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, 99}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, ta1}, {y}) == OH_NN_INVALID_PARAMETER);   // a parameter as input
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, w}, {x}) == OH_NN_INVALID_PARAMETER);     // inputs and outputs overlap
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, w, dyn}, {y}) == OH_NN_INVALID_PARAMETER);  // MATMUL takes 2 inputs
    CHECK(b.op(static_cast<OH_NN_OperationType>(0), {}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);

    // FULL_CONNECTION on API 11: [ACTIVATIONTYPE] or [AXIS, ACTIVATIONTYPE], no bias.
    const uint32_t has_bias = b.param(OH_NN_FULL_CONNECTION_HAS_BIAS, OH_NN_BOOL, uint8_t{0});
    const uint32_t use_axis = b.param(OH_NN_FULL_CONNECTION_USE_AXIS, OH_NN_BOOL, uint8_t{0});
    const uint32_t fc_axis = b.param(OH_NN_FULL_CONNECTION_AXIS, OH_NN_INT64, int64_t{1});
    const uint32_t bias = b.tensor(OH_NN_FLOAT32, {3});
    CHECK(b.data(bias, std::vector<float>(3, 0.0f)) == OH_NN_SUCCESS);
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, w}, {bias}) == OH_NN_INVALID_PARAMETER);   // a constant as output
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, {has_bias, fc_act}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, {use_axis, fc_act}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, {fc_act}, {x, w, bias}, {y}) == OH_NN_INVALID_PARAMETER);   // 3 inputs
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, {}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, {fc_axis}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.op(OH_NN_OPS_FULL_CONNECTION, {ta1}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);

    // A valid operation; its output cannot be written twice or be given data.
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, w}, {y}) == OH_NN_SUCCESS);
    const uint32_t z = b.tensor(OH_NN_FLOAT32, {2, 3});
    CHECK(b.op(OH_NN_OPS_MATMUL, {}, {x, w}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.data(y, std::vector<float>(6, 0.0f)) == OH_NN_INVALID_PARAMETER);

    // Finish needs inputs/outputs; inputs carry no data; GetAvailableOperations needs Finish.
    const bool *supported = nullptr;
    uint32_t count = 0;
    CHECK(nn.OH_NNModel_GetAvailableOperations(b.m, 0, &supported, &count) == OH_NN_OPERATION_FORBIDDEN);
    CHECK(nn.OH_NNModel_Finish(b.m) == OH_NN_OPERATION_FORBIDDEN);
    CHECK(b.io({w}, {y}) == OH_NN_INVALID_PARAMETER);      // a constant as model input
    CHECK(b.io({x}, {x}) == OH_NN_INVALID_PARAMETER);      // overlap
    CHECK(b.io({}, {y}) == OH_NN_INVALID_PARAMETER);
    CHECK(b.io({x}, {z}) == OH_NN_SUCCESS);                // z is written by nothing: Finish says so
    CHECK(b.io({x}, {y}) == OH_NN_OPERATION_FORBIDDEN);    // once
    CHECK(nn.OH_NNModel_Finish(b.m) == OH_NN_INVALID_PARAMETER);
    b.destroy();

    Builder f = fc_model(2, 3, 4, std::vector<uint16_t>(12, 0x3c00), OH_NN_FLOAT32, false);
    CHECK(nn.OH_NNModel_Finish(f.m) == OH_NN_OPERATION_FORBIDDEN);   // twice
    CHECK(f.op(OH_NN_OPS_MATMUL, {}, {0, 1}, {2}) == OH_NN_OPERATION_FORBIDDEN);
    NN_TensorDesc *late = make_desc(OH_NN_FLOAT32, {1});
    CHECK(nn.OH_NNModel_AddTensorToModel(f.m, late) == OH_NN_OPERATION_FORBIDDEN);
    nn.OH_NNTensorDesc_Destroy(&late);
    CHECK(nn.OH_NNModel_GetAvailableOperations(f.m, 0, nullptr, &count) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_GetAvailableOperations(f.m, 0, &supported, nullptr) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_GetAvailableOperations(f.m, 12345, &supported, &count) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNModel_GetAvailableOperations(f.m, OHAI_NNRT_SIM_DEVICE_ID, &supported, &count) == OH_NN_SUCCESS);
    CHECK(count == 1 && supported[0]);
    const bool *again = supported;   // *isSupported must be NULL on entry
    CHECK(nn.OH_NNModel_GetAvailableOperations(f.m, 0, &again, &count) == OH_NN_INVALID_PARAMETER);
    f.destroy();

    OH_NNModel *null_model = nullptr;
    nn.OH_NNModel_Destroy(&null_model);   // harmless
    nn.OH_NNModel_Destroy(nullptr);
}

// An operation the device does not run makes GetAvailableOperations say so and Build fail.
void unsupported_operations() {
    struct Case {
        const char *what;
        OH_NN_OperationType type;
        int8_t fuse;
        int32_t weight_k;
    };
    const Case cases[] = {
        {"ADD", OH_NN_OPS_ADD, 0, 4},
        {"MATMUL with RELU", OH_NN_OPS_MATMUL, OH_NN_FUSED_RELU, 4},
        {"MATMUL with mismatched K", OH_NN_OPS_MATMUL, 0, 5},
    };
    for (const Case &cs : cases) {
        Builder b;
        const uint32_t x = b.tensor(OH_NN_FLOAT32, {2, 4});
        const uint32_t w = b.tensor(OH_NN_FLOAT32, {cs.weight_k, 3});
        CHECK(b.data(w, std::vector<float>(size_t(cs.weight_k) * 3, 1.0f)) == OH_NN_SUCCESS);
        const uint32_t y = b.tensor(OH_NN_FLOAT32, {2, 3});
        std::vector<uint32_t> params;
        if (cs.type == OH_NN_OPS_MATMUL) params.push_back(b.param(OH_NN_MATMUL_ACTIVATION_TYPE, OH_NN_INT8, cs.fuse));
        CHECK(b.op(cs.type, params, {x, w}, {y}) == OH_NN_SUCCESS);
        CHECK(b.io({x}, {y}) == OH_NN_SUCCESS);
        CHECK(nn.OH_NNModel_Finish(b.m) == OH_NN_SUCCESS);
        const bool *supported = nullptr;
        uint32_t count = 0;
        CHECK(nn.OH_NNModel_GetAvailableOperations(b.m, 0, &supported, &count) == OH_NN_SUCCESS);
        CHECK(count == 1 && !supported[0]);
        OH_NNCompilation *c = compile(b.m, OH_NN_FAILED);
        CHECK(nn.OH_NNExecutor_Construct(c) == nullptr);
        nn.OH_NNCompilation_Destroy(&c);
        b.destroy();
    }
}

void compilation_rules() {
    const std::vector<uint16_t> w = random_f16(6 * 8);
    CHECK(nn.OH_NNCompilation_Construct(nullptr) == nullptr);
    Builder unfinished;
    CHECK(nn.OH_NNCompilation_Construct(unfinished.m) == nullptr);
    unfinished.destroy();

    // A second Build, and settings after Build.
    Builder b = fc_model(2, 6, 8, w, OH_NN_FLOAT32, false);
    OH_NNCompilation *c = compile(b.m);
    CHECK(nn.OH_NNCompilation_Build(c) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNCompilation_SetDevice(c, 0) == OH_NN_OPERATION_FORBIDDEN);
    nn.OH_NNCompilation_Destroy(&c);
    CHECK(c == nullptr);
    nn.OH_NNCompilation_Destroy(&c);   // harmless
    nn.OH_NNCompilation_Destroy(nullptr);

    // A failed Build uses the compilation up; an unknown device fails Build.
    c = nn.OH_NNCompilation_Construct(b.m);
    CHECK(nn.OH_NNCompilation_SetPerformanceMode(c, static_cast<OH_NN_PerformanceMode>(9)) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNCompilation_SetDevice(c, 12345) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNCompilation_Build(c) == OH_NN_FAILED);
    CHECK(nn.OH_NNCompilation_SetDevice(c, 0) == OH_NN_OPERATION_FORBIDDEN);
    CHECK(nn.OH_NNCompilation_Build(c) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_Construct(c) == nullptr);
    nn.OH_NNCompilation_Destroy(&c);

    // A missing cache directory fails Build with INVALID_PATH.
    const std::string missing = g_tmp + "/no/such/dir";
    c = nn.OH_NNCompilation_Construct(b.m);
    CHECK(nn.OH_NNCompilation_SetCache(c, nullptr, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNCompilation_SetCache(c, missing.c_str(), 1) == OH_NN_SUCCESS);
    CHECK(nn.OH_NNCompilation_Build(c) == OH_NN_INVALID_PATH);
    nn.OH_NNCompilation_Destroy(&c);

    // An existing one: written on the first build, a hit when the same model is built again.
    const std::string cache = g_tmp + "/cache";
    std::filesystem::create_directories(cache);
    const long long hits = stat("cache_hits"), writes = stat("cache_writes");
    c = compile(b.m, OH_NN_SUCCESS, cache.c_str());
    nn.OH_NNCompilation_Destroy(&c);
    CHECK(stat("cache_writes") == writes + 1 && stat("cache_hits") == hits);
    size_t files = 0;
    for (const auto &entry : std::filesystem::directory_iterator(cache)) files += entry.is_regular_file() ? 1 : 0;
    CHECK(files == 1);
    Builder same = fc_model(2, 6, 8, w, OH_NN_FLOAT32, false);
    c = compile(same.m, OH_NN_SUCCESS, cache.c_str());
    nn.OH_NNCompilation_Destroy(&c);
    CHECK(stat("cache_hits") == hits + 1 && stat("cache_writes") == writes + 1);
    same.destroy();

    // The model must live until Build.
    c = nn.OH_NNCompilation_Construct(b.m);
    CHECK(c != nullptr);
    b.destroy();
    CHECK(nn.OH_NNCompilation_Build(c) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_Construct(c) == nullptr);
    nn.OH_NNCompilation_Destroy(&c);
}

void run_rules() {
    const size_t m = 2, n = 3, k = 4;
    Builder b = fc_model(m, n, k, random_f16(n * k), OH_NN_FLOAT32, false);
    OH_NNCompilation *c = compile(b.m);
    b.destroy();
    Run r;
    r.make(c, 1, 1);
    nn.OH_NNCompilation_Destroy(&c);
    CHECK(nn.OH_NNExecutor_CreateInputTensorDesc(r.exec, 1) == nullptr);
    CHECK(nn.OH_NNExecutor_CreateOutputTensorDesc(r.exec, 1) == nullptr);
    CHECK(nn.OH_NNExecutor_CreateInputTensorDesc(nullptr, 0) == nullptr);
    CHECK(nn.OH_NNExecutor_Construct(nullptr) == nullptr);

    NN_Tensor *in = r.in[0], *out = r.out[0];
    NN_Tensor *none[1] = {nullptr};
    CHECK(r.run() == OH_NN_SUCCESS);
    CHECK(nn.OH_NNExecutor_RunSync(nullptr, &in, 1, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, nullptr, 1, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &in, 1, nullptr, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &in, 0, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &in, 1, &out, 0) == OH_NN_INVALID_PARAMETER);
    std::vector<NN_Tensor *> many(201, in);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, many.data(), 201, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, many.data(), 2, &out, 1) == OH_NN_INVALID_PARAMETER);   // model has 1 input
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, none, 1, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &in, 1, none, 1) == OH_NN_INVALID_PARAMETER);

    // Tensors that do not match the compiled model: byte size, data type, shape.
    auto tensor = [](OH_NN_DataType type, std::vector<int32_t> shape) {
        NN_TensorDesc *d = make_desc(type, shape);
        NN_Tensor *t = nn.OH_NNTensor_Create(0, d);
        CHECK(t != nullptr);
        nn.OH_NNTensorDesc_Destroy(&d);
        return t;
    };
    NN_Tensor *small = tensor(OH_NN_FLOAT32, {int32_t(m), int32_t(k - 1)});
    NN_Tensor *half = tensor(OH_NN_FLOAT16, {int32_t(m), int32_t(k)});
    NN_Tensor *reshaped = tensor(OH_NN_FLOAT32, {int32_t(k), int32_t(m)});
    NN_Tensor *big_out = tensor(OH_NN_FLOAT32, {int32_t(m), int32_t(n + 1)});
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &small, 1, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &half, 1, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &reshaped, 1, &out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &in, 1, &big_out, 1) == OH_NN_INVALID_PARAMETER);
    CHECK(nn.OH_NNExecutor_RunSync(r.exec, &out, 1, &in, 1) == OH_NN_INVALID_PARAMETER);   // swapped
    for (NN_Tensor *t : {small, half, reshaped, big_out}) CHECK(nn.OH_NNTensor_Destroy(&t) == OH_NN_SUCCESS);
    CHECK(r.run() == OH_NN_SUCCESS);

    OH_NNExecutor *stale = r.exec;
    r.destroy();
    nn.OH_NNExecutor_Destroy(&stale);   // a destroyed executor is not touched again
    OH_NNExecutor *null_exec = nullptr;
    nn.OH_NNExecutor_Destroy(&null_exec);
    nn.OH_NNExecutor_Destroy(nullptr);
}

// One small FC model compiled and run under whatever faults are set; returns Build's and
// RunSync's codes.
struct Outcome {
    OH_NN_ReturnCode build = OH_NN_FAILED;
    std::vector<OH_NN_ReturnCode> runs;
};

OH_NN_ReturnCode first_run(const Outcome &o) { return o.runs.empty() ? OH_NN_UNSUPPORTED : o.runs[0]; }

Outcome fc_under_faults(int runs) {
    Outcome o;
    Builder b = fc_model(2, 3, 4, random_f16(12), OH_NN_FLOAT32, false);
    OH_NNCompilation *c = nn.OH_NNCompilation_Construct(b.m);
    o.build = nn.OH_NNCompilation_Build(c);
    if (o.build == OH_NN_SUCCESS) {
        Run r;
        r.make(c, 1, 1);
        for (int i = 0; i < runs; ++i) o.runs.push_back(r.run());
        r.destroy();
    }
    nn.OH_NNCompilation_Destroy(&c);
    b.destroy();
    return o;
}

void faults() {
    set_faults("no_devices");
    const size_t *ids = nullptr;
    uint32_t count = 9;
    CHECK(nn.OH_NNDevice_GetAllDevicesID(&ids, &count) == OH_NN_SUCCESS && count == 0);
    const char *name = nullptr;
    CHECK(nn.OH_NNDevice_GetName(OHAI_NNRT_SIM_DEVICE_ID, &name) == OH_NN_INVALID_PARAMETER);
    CHECK(stat("devices") == 0);
    CHECK(fc_under_faults(1).build == OH_NN_FAILED);

    set_faults("op_unsupported");
    {
        Builder b = fc_model(2, 3, 4, random_f16(12), OH_NN_FLOAT32, false);
        const bool *supported = nullptr;
        CHECK(nn.OH_NNModel_GetAvailableOperations(b.m, 0, &supported, &count) == OH_NN_SUCCESS);
        CHECK(count == 1 && !supported[0]);
        b.destroy();
    }
    CHECK(fc_under_faults(1).build == OH_NN_FAILED);

    set_faults("build_fail");
    CHECK(fc_under_faults(1).build == OH_NN_FAILED);

    set_faults("run_fail");
    Outcome o = fc_under_faults(2);
    CHECK(o.build == OH_NN_SUCCESS && o.runs.size() == 2 && o.runs[0] == OH_NN_FAILED && o.runs[1] == OH_NN_FAILED);

    set_faults("fail_after:2");
    o = fc_under_faults(4);
    CHECK(o.runs.size() == 4 && o.runs[0] == OH_NN_SUCCESS && o.runs[1] == OH_NN_SUCCESS &&
          o.runs[2] == OH_NN_FAILED && o.runs[3] == OH_NN_FAILED);
    // The count is process-wide: a new executor does not bring the device back.
    o = fc_under_faults(1);
    CHECK(o.runs.size() == 1 && o.runs[0] == OH_NN_FAILED);
    set_faults("fail_after:2");   // reloading restarts it
    CHECK(first_run(fc_under_faults(1)) == OH_NN_SUCCESS);

    // The executor's output descriptor disagrees with the model: last dimension one larger.
    set_faults("wrong_output_size");
    {
        const size_t m = 2, n = 3, k = 4;
        const std::vector<uint16_t> w = random_f16(n * k);
        Builder b = fc_model(m, n, k, w, OH_NN_FLOAT32, false);
        OH_NNCompilation *c = compile(b.m);
        b.destroy();
        Run r;
        r.make(c, 1, 1);
        NN_TensorDesc *d = nn.OH_NNExecutor_CreateOutputTensorDesc(r.exec, 0);
        size_t bytes = 0;
        CHECK(nn.OH_NNTensorDesc_GetByteSize(d, &bytes) == OH_NN_SUCCESS && bytes == m * (n + 1) * sizeof(float));
        nn.OH_NNTensorDesc_Destroy(&d);
        const std::vector<float> x = random_f32(m * k);
        r.fill(0, x);
        CHECK(r.run() == OH_NN_SUCCESS);   // with a tensor made from that descriptor
        const std::vector<float> got = r.output_f32(0, m * (n + 1));
        const std::vector<float> want = reference_nt(x, widen(w), m, n, k);
        for (size_t i = 0; i < m; ++i) {
            CHECK(std::isnan(got[i * (n + 1) + n]));
            for (size_t j = 0; j < n; ++j) CHECK(std::fabs(got[i * (n + 1) + j] - want[i * n + j]) < 1e-4f);
        }
        // A tensor of the model's true size is refused while the device believes otherwise.
        NN_TensorDesc *true_desc = make_desc(OH_NN_FLOAT32, {int32_t(m), int32_t(n)});
        NN_Tensor *true_out = nn.OH_NNTensor_Create(0, true_desc);
        nn.OH_NNTensorDesc_Destroy(&true_desc);
        CHECK(nn.OH_NNExecutor_RunSync(r.exec, r.in.data(), 1, &true_out, 1) == OH_NN_INVALID_PARAMETER);
        nn.OH_NNTensor_Destroy(&true_out);
        r.destroy();
        nn.OH_NNCompilation_Destroy(&c);
    }

    // Several at once; an unknown name is reported (the known ones still apply).
    set_faults("build_fail, run_fail");
    CHECK(fc_under_faults(1).build == OH_NN_FAILED);
    setenv("OHAI_NNRT_SIM_FAULT", "run_fail,explode", 1);
    CHECK(nn.ohai_nnrt_sim_reload_faults() == -1);
    o = fc_under_faults(1);
    CHECK(o.build == OH_NN_SUCCESS && first_run(o) == OH_NN_FAILED);

    // Per-call overhead.
    set_faults(nullptr);
    setenv("OHAI_NNRT_SIM_SLOW_US", "20000", 1);
    CHECK(nn.ohai_nnrt_sim_reload_faults() == 0);
    const auto t0 = std::chrono::steady_clock::now();
    o = fc_under_faults(2);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    CHECK(o.runs.size() == 2 && o.runs[0] == OH_NN_SUCCESS && us >= 40000);
    unsetenv("OHAI_NNRT_SIM_SLOW_US");
    set_faults(nullptr);
    CHECK(first_run(fc_under_faults(1)) == OH_NN_SUCCESS);
}

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

void counters() {
    nn.ohai_nnrt_sim_reset_stats();
    CHECK(stat("builds") == 0 && stat("runs") == 0 && stat("calls.OH_NNCompilation_Build") == 0);
    const Outcome ok = fc_under_faults(3);
    CHECK(ok.build == OH_NN_SUCCESS);
    CHECK(stat("builds") == 1 && stat("build_failures") == 0);
    CHECK(stat("runs") == 3 && stat("run_failures") == 0);
    CHECK(stat("ops_executed") == 3 && stat("macs") == 3 * 2 * 3 * 4);
    CHECK(stat("calls.OH_NNExecutor_RunSync") == 3 && stat("calls.OH_NNCompilation_Build") == 1);
    set_faults("run_fail");
    fc_under_faults(2);
    set_faults("build_fail");
    fc_under_faults(1);
    set_faults(nullptr);
    CHECK(stat("builds") == 2 && stat("build_failures") == 1);
    CHECK(stat("runs") == 3 && stat("run_failures") == 2);
    CHECK(stat("no_such_counter") == -1);
    CHECK(stat("devices") == 1);

    const std::string json = nn.ohai_nnrt_sim_stats_json();
    for (const char *key : {"\"models_alive\":", "\"compilations_alive\":", "\"executors_alive\":", "\"tensors_alive\":",
                            "\"tensor_descs_alive\":", "\"builds\":2", "\"build_failures\":1", "\"runs\":3",
                            "\"run_failures\":2", "\"cache_hits\":", "\"cache_writes\":", "\"available_ops_queries\":",
                            "\"ops_executed\":", "\"macs\":", "\"bad_handles\":", "\"devices\":1", "\"faults\":\"\"",
                            "\"calls\":{", "\"OH_NNExecutor_RunSync\":5"}) {
        if (!contains(json, key)) std::fprintf(stderr, "stats json lacks %s: %s\n", key, json.c_str());
        CHECK(contains(json, key));
    }
    // A reset keeps the live-object counts: it must not hide a leak.
    Builder held;
    nn.ohai_nnrt_sim_reset_stats();
    CHECK(stat("models_alive") == 1 && stat("builds") == 0);
    held.destroy();
}

void nothing_alive() {
    for (const char *key : {"models_alive", "compilations_alive", "executors_alive", "tensors_alive", "tensor_descs_alive"}) {
        if (stat(key) != 0) std::fprintf(stderr, "%s = %lld\n", key, stat(key));
        CHECK(stat(key) == 0);
    }
}

std::string read_text(const std::string &path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// The counters land in $OHAI_NNRT_SIM_STATS at exit ("%p": the process id).
void stats_file_at_exit() {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        setenv("OHAI_NNRT_SIM_STATS", (g_tmp + "/stats_%p.json").c_str(), 1);
        Builder b;   // left alive on purpose: the file must show it
        std::exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const std::string text = read_text(g_tmp + "/stats_" + std::to_string(pid) + ".json");
    CHECK(contains(text, "\"models_alive\":1") && contains(text, "\"OH_NNModel_Construct\":"));
}

// Faults are read when the library loads: a fresh process with OHAI_NNRT_SIM_FAULT set.
void faults_read_at_load(const char *self) {
    for (const char *fault : {"no_devices", ""}) {
        std::fflush(nullptr);
        const pid_t pid = fork();
        if (pid == 0) {
            setenv("OHAI_NNRT_SIM_FAULT", fault, 1);
            setenv("OHAI_NNRT_SIM_STATS", (g_tmp + "/load_%p.json").c_str(), 1);
            execl(self, self, "--child-count-devices", g_dir.c_str(), static_cast<char *>(nullptr));
            _exit(99);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
        const int want = *fault ? 0 : 1;
        CHECK(WEXITSTATUS(status) == want);
        const std::string text = read_text(g_tmp + "/load_" + std::to_string(pid) + ".json");
        CHECK(contains(text, std::string("\"devices\":") + std::to_string(want)));
        CHECK(contains(text, std::string("\"faults\":\"") + fault + "\""));
        CHECK(contains(text, "\"models_alive\":0"));
    }
}

// The child of faults_read_at_load: exit code = the number of devices (10+ on errors).
int child_count_devices() {
    if (!load(&nn)) return 10;
    const size_t *ids = nullptr;
    uint32_t count = 0;
    if (nn.OH_NNDevice_GetAllDevicesID(&ids, &count) != OH_NN_SUCCESS) return 11;
    OH_NNModel *m = nn.OH_NNModel_Construct();
    nn.OH_NNModel_Destroy(&m);
    return static_cast<int>(count);
}

}  // namespace

int main(int argc, char **argv) {
    g_dir = OHAI_NNRT_SIM_DIR;
    if (argc >= 3 && std::strcmp(argv[1], "--child-count-devices") == 0) {
        g_dir = argv[2];
        return child_count_devices();
    }
    if (argc >= 2) g_dir = argv[1];
    char tmpl[] = "/tmp/ohai_nnrt_sim_test_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    g_tmp = tmpl;
    unsetenv("OHAI_NNRT_SIM_FAULT");
    unsetenv("OHAI_NNRT_SIM_SLOW_US");
    unsetenv("OHAI_NNRT_SIM_STATS");

    core_alone_has_no_device();
    if (g_failures == 0) {
        set_faults(nullptr);
        devices();
        tensor_descriptors();
        full_connection_f16_weights();
        matmul_f32_weights();
        matmul_two_inputs();
        large_threaded_fp16();
        model_building_rules();
        unsupported_operations();
        compilation_rules();
        run_rules();
        faults();
        counters();
        nothing_alive();
        stats_file_at_exit();
        faults_read_at_load("/proc/self/exe");
    }
    std::error_code ec;
    std::filesystem::remove_all(g_tmp, ec);
    return finish("test_nnrt_sim");
}
