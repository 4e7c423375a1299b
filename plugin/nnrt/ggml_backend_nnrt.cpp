// ohai — NNRt as a ggml backend, so that llama.cpp's own scheduler splits every graph: large
// matrix multiplications with constant weights go to the NNRt accelerator, everything else stays
// on the CPU. Modelled on ggml's BLAS backend: the accelerator works on host buffers (the weights
// stay where llama.cpp mapped them), and any NNRt failure is computed again on the CPU.
//
// The device presents itself to llama.cpp as a GPU-type device with the CPU's buffer type. That
// keeps the choice per model (llama.cpp uses the devices listed in llama_model_params.devices
// and nothing else of that type), while with n_gpu_layers = 0 every weight stays in ordinary
// (memory-mapped) CPU buffers, which the scheduler lets this backend read directly.
#include "ggml_backend_nnrt.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ggml-backend-impl.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "nnrt_loader.h"
#include "nnrt_matmul.h"
#include "ohai/error.h"
#include "ohai/log.h"

namespace ohai::nnrt {

namespace {

// Failures (builds or runs) after which a device is not asked again in this process.
constexpr int kMaxDeviceFailures = 3;
constexpr int64_t kMaxRows = 4096;

struct DeviceContext {
    size_t id = 0;
    std::string name;
    std::string description;
    OH_NN_DeviceType type = OH_NN_OTHERS;
    std::atomic<int> failures{0};
    std::atomic<bool> disabled{false};
    std::mutex mutex;
    std::set<int> unsupported_types;   // ggml weight types the device refused (asked once)
    std::set<int> supported_types;     // ... and accepted: not asked again
};

struct Stats {
    std::mutex mutex;
    NnrtStats values;
};

Stats & stats() {
    static Stats s;
    return s;
}

struct SettingsHolder {
    std::mutex mutex;
    NnrtSettings settings;
    std::string bad_min_batch;   // reported once the log is set up (see backend_reg)
    SettingsHolder() {
        if (const char * v = std::getenv("OHAI_NNRT_MIN_BATCH"); v && *v) {
            char * end = nullptr;
            const long n = std::strtol(v, &end, 10);
            if (end != v && *end == '\0' && n >= 1 && n <= 65536) settings.min_batch = static_cast<uint32_t>(n);
            else bad_min_batch = v;
        }
        if (const char * v = std::getenv("OHAI_NNRT_DEQUANTIZE"); v && *v) settings.dequantize = std::strcmp(v, "0") != 0;
        if (const char * v = std::getenv("OHAI_NNRT_CACHE_DIR"); v && *v) settings.cache_dir = v;
    }
};

SettingsHolder & settings_holder() {
    static SettingsHolder h;
    return h;
}

NnrtSettings current_settings() {
    auto & h = settings_holder();
    std::lock_guard<std::mutex> lock(h.mutex);
    return h.settings;
}

void count_fallback(const std::string & reason) {
    auto & s = stats();
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.values.ops_fallback;
    ++s.values.fallback_reasons[reason];
}

// Logged once per distinct message: a failing device must not flood a system log.
void log_once(const std::string & message) {
    static std::mutex mutex;
    static std::set<std::string> seen;
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (!seen.insert(message).second) return;
    }
    log_message(LogLevel::Warn, "nnrt: " + message + " (falling back to the CPU)");
}

void record_device_failure(DeviceContext & dev) {
    if (dev.failures.fetch_add(1) + 1 >= kMaxDeviceFailures && !dev.disabled.exchange(true)) {
        log_message(LogLevel::Warn, "nnrt: device " + dev.name + " failed " + std::to_string(kMaxDeviceFailures) +
                                        " times: disabled for the rest of the process, the CPU does the work");
        auto & s = stats();
        std::lock_guard<std::mutex> lock(s.mutex);
        s.values.device_disabled = true;
    }
}

// ---------------------------------------------------------------------------------------------
// Which matrix multiplications the device takes

bool weight_type_usable(ggml_type type, bool dequantize) {
    if (type == GGML_TYPE_F32 || type == GGML_TYPE_F16) return true;
    return dequantize && ggml_is_quantized(type) && ggml_get_type_traits(type)->to_float != nullptr;
}

// Compiled row counts. Every bucket is a compiled copy of the weight on the device side, so there
// are few: one for short prompt chunks, one for the default micro-batch (512), larger ones only for
// larger batches. Shorter inputs are padded.
int64_t rows_bucket(int64_t rows) {
    if (rows <= 64) return 64;
    int64_t b = 512;
    while (b < rows) b *= 2;
    return b;
}

bool mul_mat_offloadable(DeviceContext & dev, const ggml_tensor * op) {
    const ggml_tensor * w = op->src[0];
    const ggml_tensor * x = op->src[1];
    if (dev.disabled.load()) return false;
    const NnrtSettings s = current_settings();
    // Constant weights only: KV-cache products change every step and would be recompiled.
    if (!w->buffer || ggml_backend_buffer_get_usage(w->buffer) != GGML_BACKEND_BUFFER_USAGE_WEIGHTS) return false;
    if (!weight_type_usable(w->type, s.dequantize)) return false;
    {
        std::lock_guard<std::mutex> lock(dev.mutex);
        if (dev.unsupported_types.count(w->type)) return false;
    }
    return x->type == GGML_TYPE_F32 && op->type == GGML_TYPE_F32 && ggml_is_contiguous(w) && ggml_is_contiguous(x) &&
           ggml_is_contiguous(op) && w->ne[2] == 1 && w->ne[3] == 1 && x->ne[2] == 1 && x->ne[3] == 1 &&
           x->ne[1] >= static_cast<int64_t>(s.min_batch) && x->ne[1] <= kMaxRows && w->ne[0] <= INT32_MAX &&
           w->ne[1] <= INT32_MAX;
}

// ---------------------------------------------------------------------------------------------
// The backend: one per llama.cpp context

struct ExecutorEntry {
    std::unique_ptr<NnrtMatMul> matmul;
    std::string failure;   // non-empty: this weight/shape fell back for good
};

struct BackendContext {
    DeviceContext * dev = nullptr;
    const NnrtApi * api = nullptr;
    // Keyed by the weight's data and the compiled row count. Weights do not move while a context
    // lives (the model outlives its contexts), and the cache dies with the context.
    std::map<std::tuple<const void *, int64_t, int64_t, int, int64_t>, ExecutorEntry> executors;
    ggml_backend_t cpu = nullptr;   // recomputes whatever the device could not
    int n_threads = GGML_DEFAULT_N_THREADS;
};

const char * backend_name(ggml_backend_t) { return "NNRt"; }

void backend_free(ggml_backend_t backend) {
    auto * ctx = static_cast<BackendContext *>(backend->context);
    ctx->executors.clear();
    if (ctx->cpu) ggml_backend_free(ctx->cpu);
    delete ctx;
    delete backend;
}

// The same product on the CPU with ggml's own kernels, reading and writing the tensors in place.
bool compute_on_cpu(BackendContext & ctx, ggml_tensor * node) {
    if (!ctx.cpu) ctx.cpu = ggml_backend_cpu_init();
    if (!ctx.cpu) return false;
    ggml_backend_cpu_set_n_threads(ctx.cpu, ctx.n_threads);
    const size_t mem = ggml_tensor_overhead() * 4 + ggml_graph_overhead_custom(4, false);
    ggml_init_params ip{mem, nullptr, /*no_alloc=*/true};
    ggml_context * g = ggml_init(ip);
    if (!g) return false;
    const ggml_tensor * w = node->src[0];
    const ggml_tensor * x = node->src[1];
    ggml_tensor * a = ggml_new_tensor_4d(g, w->type, w->ne[0], w->ne[1], w->ne[2], w->ne[3]);
    ggml_tensor * b = ggml_new_tensor_4d(g, x->type, x->ne[0], x->ne[1], x->ne[2], x->ne[3]);
    a->data = w->data;
    b->data = x->data;
    ggml_tensor * out = ggml_mul_mat(g, a, b);
    out->data = node->data;
    ggml_cgraph * graph = ggml_new_graph_custom(g, 4, false);
    ggml_build_forward_expand(graph, out);
    const ggml_status st = ggml_backend_graph_compute(ctx.cpu, graph);
    ggml_free(g);
    return st == GGML_STATUS_SUCCESS;
}

// The weight as NNRt takes it: F32 and F16 as they are, other types dequantized to F16.
const void * weight_data(const ggml_tensor * w, OH_NN_DataType & type, std::vector<ggml_fp16_t> & scratch) {
    if (w->type == GGML_TYPE_F32) {
        type = OH_NN_FLOAT32;
        return w->data;
    }
    type = OH_NN_FLOAT16;
    if (w->type == GGML_TYPE_F16) return w->data;
    const int64_t k = w->ne[0], n = w->ne[1];
    const auto * traits = ggml_get_type_traits(w->type);
    std::vector<float> row(static_cast<size_t>(k));
    scratch.resize(static_cast<size_t>(n * k));
    for (int64_t r = 0; r < n; ++r) {
        traits->to_float(static_cast<const char *>(w->data) + r * w->nb[1], row.data(), k);
        ggml_fp32_to_fp16_row(row.data(), scratch.data() + r * k, k);
    }
    return scratch.data();
}

// False only when not even the CPU could compute the product (the graph then fails).
bool compute_mul_mat(BackendContext & ctx, ggml_tensor * node) {
    const ggml_tensor * w = node->src[0];
    const ggml_tensor * x = node->src[1];
    DeviceContext & dev = *ctx.dev;
    const int64_t rows = x->ne[1];
    auto fallback = [&](const std::string & reason) -> bool {
        count_fallback(reason);
        if (compute_on_cpu(ctx, node)) return true;
        log_message(LogLevel::Error, "nnrt: the CPU fallback of a matrix multiplication failed");
        return false;
    };
    if (dev.disabled.load()) return fallback("device disabled");
    {
        // The device refused this weight type in an earlier graph (or earlier in this one).
        std::lock_guard<std::mutex> lock(dev.mutex);
        if (dev.unsupported_types.count(w->type)) return fallback("operation unsupported by the device");
    }
    const int64_t bucket = rows_bucket(rows);
    const auto key = std::make_tuple(static_cast<const void *>(w->data), w->ne[0], w->ne[1], static_cast<int>(w->type), bucket);
    ExecutorEntry & entry = ctx.executors[key];
    if (!entry.failure.empty()) return fallback(entry.failure);
    if (!entry.matmul) {
        const NnrtSettings s = current_settings();
        OH_NN_DataType type = OH_NN_FLOAT32;
        std::vector<ggml_fp16_t> scratch;
        const void * data = weight_data(w, type, scratch);
        bool known_supported = false;
        {
            std::lock_guard<std::mutex> lock(dev.mutex);
            known_supported = dev.supported_types.count(w->type) > 0;
        }
        std::string error;
        bool device_fault = false;
        const MatMulShape shape{w->ne[1], w->ne[0], bucket};
        entry.matmul = NnrtMatMul::build(*ctx.api, dev.id, shape, data, type, s.cache_dir, known_supported, error,
                                         device_fault);
        if (!entry.matmul && !s.cache_dir.empty() && !device_fault && error.rfind("unsupported", 0) != 0) {
            // A cache directory problem must not cost the offload: build without the cache.
            log_once(error + " (building without the compilation cache)");
            entry.matmul = NnrtMatMul::build(*ctx.api, dev.id, shape, data, type, "", known_supported, error,
                                             device_fault);
        }
        if (entry.matmul) {
            std::lock_guard<std::mutex> lock(dev.mutex);
            dev.supported_types.insert(w->type);
        }
        {
            auto & st = stats();
            std::lock_guard<std::mutex> lock(st.mutex);
            ++(entry.matmul ? st.values.executors_built : st.values.build_failures);
        }
        if (!entry.matmul) {
            if (error.rfind("unsupported", 0) == 0) {
                // Remember the device's answer for this weight type: later graphs keep it on the CPU.
                std::lock_guard<std::mutex> lock(dev.mutex);
                dev.unsupported_types.insert(w->type);
                entry.failure = "operation unsupported by the device";
            } else {
                entry.failure = "build failed";
                // Memory or cache trouble says nothing about the device: only this weight falls back.
                if (device_fault) record_device_failure(dev);
            }
            log_once(error);
            return fallback(entry.failure);
        }
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::string error;
    double copy_ms = 0;
    const bool ok = entry.matmul->run(static_cast<const float *>(x->data), x->nb[1] / sizeof(float), rows,
                                      static_cast<float *>(node->data), node->nb[1] / sizeof(float), error, &copy_ms);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!ok) {
        {
            auto & st = stats();
            std::lock_guard<std::mutex> lock(st.mutex);
            ++st.values.run_failures;
        }
        log_once(error);
        // This executor is not trusted again; a device that keeps failing is disabled.
        entry.matmul.reset();
        entry.failure = "run failed";
        record_device_failure(dev);
        return fallback("run failed");
    }
    auto & st = stats();
    std::lock_guard<std::mutex> lock(st.mutex);
    ++st.values.ops_offloaded;
    st.values.device_ms += ms;
    st.values.copy_ms += copy_ms;
    return true;
}

ggml_status backend_graph_compute(ggml_backend_t backend, ggml_cgraph * cgraph) {
    auto * ctx = static_cast<BackendContext *>(backend->context);
    for (int i = 0; i < ggml_graph_n_nodes(cgraph); ++i) {
        ggml_tensor * node = ggml_graph_node(cgraph, i);
        switch (node->op) {
            case GGML_OP_MUL_MAT: {
                // Nothing may escape into ggml's C code: an exception here (out of memory while
                // dequantizing or compiling) is one more reason to use the CPU.
                bool ok = false;
                try {
                    ok = compute_mul_mat(*ctx, node);
                } catch (...) {
                    try {
                        count_fallback("out of memory");
                        ok = compute_on_cpu(*ctx, node);
                    } catch (...) {
                        ok = false;
                    }
                }
                if (!ok) return GGML_STATUS_FAILED;
                break;
            }
            case GGML_OP_NONE:
            case GGML_OP_RESHAPE:
            case GGML_OP_VIEW:
            case GGML_OP_PERMUTE:
            case GGML_OP_TRANSPOSE:
                break;
            default:
                log_message(LogLevel::Error, std::string("nnrt: unexpected operation ") + ggml_op_desc(node));
                return GGML_STATUS_FAILED;
        }
    }
    return GGML_STATUS_SUCCESS;
}

ggml_guid_t backend_guid() {
    static ggml_guid guid = {0x6f, 0x68, 0x61, 0x69, 0x2d, 0x6e, 0x6e, 0x72, 0x74, 0x2d, 0x62, 0x61, 0x63, 0x6b, 0x65, 0x6e};
    return &guid;
}

const ggml_backend_i kBackendInterface = {
    /* .get_name            = */ backend_name,
    /* .free                = */ backend_free,
    /* .set_tensor_async    = */ nullptr,
    /* .get_tensor_async    = */ nullptr,
    /* .set_tensor_2d_async = */ nullptr,
    /* .get_tensor_2d_async = */ nullptr,
    /* .cpy_tensor_async    = */ nullptr,
    /* .synchronize         = */ nullptr,
    /* .graph_plan_create   = */ nullptr,
    /* .graph_plan_free     = */ nullptr,
    /* .graph_plan_update   = */ nullptr,
    /* .graph_plan_compute  = */ nullptr,
    /* .graph_compute       = */ backend_graph_compute,
    /* .event_record        = */ nullptr,
    /* .event_wait          = */ nullptr,
    /* .graph_optimize      = */ nullptr,
};

void set_n_threads(ggml_backend_t backend, int n_threads) {
    auto * ctx = static_cast<BackendContext *>(backend->context);
    ctx->n_threads = n_threads;
}

// ---------------------------------------------------------------------------------------------
// Devices and registry

struct Registry {
    const NnrtApi * api = nullptr;
    std::string status;   // why there is no device
    std::vector<std::unique_ptr<DeviceContext>> contexts;
    std::vector<ggml_backend_device> devices;
};

Registry & registry();

DeviceContext & dev_ctx(ggml_backend_dev_t dev) { return *static_cast<DeviceContext *>(dev->context); }

const char * dev_name(ggml_backend_dev_t dev) { return dev_ctx(dev).name.c_str(); }
const char * dev_description(ggml_backend_dev_t dev) { return dev_ctx(dev).description.c_str(); }
void dev_memory(ggml_backend_dev_t, size_t * free, size_t * total) { *free = *total = 0; }
enum ggml_backend_dev_type dev_type(ggml_backend_dev_t) { return GGML_BACKEND_DEVICE_TYPE_GPU; }

void dev_props(ggml_backend_dev_t dev, ggml_backend_dev_props * props) {
    props->name = dev_name(dev);
    props->description = dev_description(dev);
    props->type = dev_type(dev);
    dev_memory(dev, &props->memory_free, &props->memory_total);
    props->caps = {/*async=*/false, /*host_buffer=*/false, /*buffer_from_host_ptr=*/true, /*events=*/false};
}

ggml_backend_t dev_init_backend(ggml_backend_dev_t dev, const char *) {
    auto * ctx = new BackendContext();
    ctx->dev = &dev_ctx(dev);
    ctx->api = registry().api;
    return new ggml_backend{backend_guid(), kBackendInterface, dev, ctx};
}

ggml_backend_buffer_type_t dev_buffer_type(ggml_backend_dev_t) { return ggml_backend_cpu_buffer_type(); }

ggml_backend_buffer_t dev_buffer_from_host_ptr(ggml_backend_dev_t, void * ptr, size_t size, size_t) {
    return ggml_backend_cpu_buffer_from_ptr(ptr, size);
}

bool dev_supports_op(ggml_backend_dev_t dev, const ggml_tensor * op) {
    switch (op->op) {
        case GGML_OP_NONE:
        case GGML_OP_RESHAPE:
        case GGML_OP_VIEW:
        case GGML_OP_PERMUTE:
        case GGML_OP_TRANSPOSE:
            return true;
        case GGML_OP_MUL_MAT:
            return mul_mat_offloadable(dev_ctx(dev), op);
        default:
            return false;
    }
}

bool dev_supports_buft(ggml_backend_dev_t, ggml_backend_buffer_type_t buft) { return ggml_backend_buft_is_host(buft); }

const ggml_backend_device_i kDeviceInterface = {
    /* .get_name             = */ dev_name,
    /* .get_description      = */ dev_description,
    /* .get_memory           = */ dev_memory,
    /* .get_type             = */ dev_type,
    /* .get_props            = */ dev_props,
    /* .init_backend         = */ dev_init_backend,
    /* .get_buffer_type      = */ dev_buffer_type,
    /* .get_host_buffer_type = */ nullptr,
    /* .buffer_from_host_ptr = */ dev_buffer_from_host_ptr,
    /* .supports_op          = */ dev_supports_op,
    /* .supports_buft        = */ dev_supports_buft,
    /* .offload_op           = */ nullptr,
    /* .event_new            = */ nullptr,
    /* .event_free           = */ nullptr,
    /* .event_synchronize    = */ nullptr,
};

const char * reg_name(ggml_backend_reg_t) { return "NNRt"; }
size_t reg_device_count(ggml_backend_reg_t) { return registry().devices.size(); }
ggml_backend_dev_t reg_device(ggml_backend_reg_t, size_t index) {
    auto & r = registry();
    return index < r.devices.size() ? &r.devices[index] : nullptr;
}
void * reg_proc_address(ggml_backend_reg_t, const char * name) {
    if (std::strcmp(name, "ggml_backend_set_n_threads") == 0) return reinterpret_cast<void *>(&set_n_threads);
    return nullptr;
}

const ggml_backend_reg_i kRegInterface = {
    /* .get_name         = */ reg_name,
    /* .get_device_count = */ reg_device_count,
    /* .get_device       = */ reg_device,
    /* .get_proc_address = */ reg_proc_address,
};

ggml_backend_reg & reg_object() {
    static ggml_backend_reg reg = {GGML_BACKEND_API_VERSION, kRegInterface, nullptr};
    return reg;
}

std::string type_name(OH_NN_DeviceType t) {
    switch (t) {
        case OH_NN_CPU: return "cpu";
        case OH_NN_GPU: return "gpu";
        case OH_NN_ACCELERATOR: return "accelerator";
        default: return "other";
    }
}

Registry build_registry() {
    Registry r;
    r.api = nnrt_api(&r.status);
    if (!r.api) return r;
    const size_t * ids = nullptr;
    uint32_t count = 0;
    if (r.api->OH_NNDevice_GetAllDevicesID(&ids, &count) != OH_NN_SUCCESS || (count > 0 && !ids)) {
        r.status = "NNRt could not list its devices";
        return r;
    }
    for (uint32_t i = 0; i < count; ++i) {
        OH_NN_DeviceType type = OH_NN_OTHERS;
        if (r.api->OH_NNDevice_GetType(ids[i], &type) != OH_NN_SUCCESS) continue;
        // Only accelerators: NNRt's own CPU device would compete with ggml's kernels for the cores.
        if (type != OH_NN_ACCELERATOR) continue;
        const char * name = nullptr;
        if (r.api->OH_NNDevice_GetName(ids[i], &name) != OH_NN_SUCCESS || !name) continue;
        auto ctx = std::make_unique<DeviceContext>();
        ctx->id = ids[i];
        ctx->name = name;
        ctx->type = type;
        ctx->description = "NNRt " + type_name(type) + " " + ctx->name;
        r.contexts.push_back(std::move(ctx));
    }
    for (auto & ctx : r.contexts) r.devices.push_back(ggml_backend_device{kDeviceInterface, &reg_object(), ctx.get()});
    if (r.devices.empty()) r.status = "NNRt reports no accelerator device";
    return r;
}

Registry & registry() {
    static Registry r = build_registry();
    return r;
}

}  // namespace

ggml_backend_reg_t backend_reg() {
    registry();   // loads NNRt and lists its devices before llama.cpp asks
    static std::once_flag warned;
    std::call_once(warned, [] {
        const std::string bad = settings_holder().bad_min_batch;
        if (!bad.empty())
            log_message(LogLevel::Warn, "nnrt: OHAI_NNRT_MIN_BATCH=" + bad + " is not an integer in [1, 65536]: using " +
                                            std::to_string(current_settings().min_batch));
    });
    return &reg_object();
}

std::string status() { return registry().status; }

std::vector<DeviceInfo> devices() {
    std::vector<DeviceInfo> out;
    for (auto & ctx : registry().contexts) {
        DeviceInfo d;
        d.name = ctx->name;
        d.kind = "nnrt";
        d.type = type_name(ctx->type);
        d.description = ctx->description;
        d.supported_ops = {"MUL_MAT (FULL_CONNECTION): F32 and F16 weights" +
                           std::string(current_settings().dequantize ? ", quantized weights as F16" : "")};
        if (ctx->disabled.load()) d.description += " (disabled after failures)";
        out.push_back(std::move(d));
    }
    return out;
}

ggml_backend_dev_t find_device(const std::string & name) {
    auto & r = registry();
    for (size_t i = 0; i < r.devices.size(); ++i)
        if (name.empty() || r.contexts[i]->name == name) return &r.devices[i];
    return nullptr;
}

}  // namespace ohai::nnrt

namespace ohai {

void set_nnrt_settings(const NnrtSettings & settings) {
    if (settings.min_batch < 1 || settings.min_batch > 65536)
        throw Error(ErrorCode::InvalidArgument, "min_batch must be in [1, 65536]");
    auto & h = nnrt::settings_holder();
    std::lock_guard<std::mutex> lock(h.mutex);
    h.settings = settings;
}

NnrtSettings nnrt_settings() { return nnrt::current_settings(); }

NnrtStats nnrt_stats() {
    auto & s = nnrt::stats();
    std::lock_guard<std::mutex> lock(s.mutex);
    return s.values;
}

}  // namespace ohai
