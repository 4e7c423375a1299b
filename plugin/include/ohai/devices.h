// ohai — where the engine computes: the CPU, and NNRt accelerators (OpenHarmony's Neural Network
// Runtime) when the system has them. See plugin/nnrt/ and docs/nnrt.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ohai {

struct DeviceInfo {
    std::string name;          // "CPU", or the NNRt device name ("<device>_<vendor>_v<major>_<minor>")
    std::string kind;          // "cpu" or "nnrt"
    std::string type;          // "cpu", "accelerator", "gpu", "other"
    std::string description;
    std::vector<std::string> supported_ops;   // what ohai offloads to it (NNRt devices)
};

struct DeviceList {
    std::vector<DeviceInfo> devices;   // the CPU first
    std::string nnrt_status;           // why there is no NNRt device ("" when there is one)
};

// Thread-safe; loads NNRt on first use.
DeviceList list_devices();

// Process-wide settings of the NNRt adapter (it is one ggml backend for the whole process).
struct NnrtSettings {
    // Matrix multiplications with fewer rows (tokens) than this stay on the CPU: on real NPUs the
    // per-call overhead dominates single-token decoding. Default: prompt processing only.
    uint32_t min_batch = 32;
    // Quantized weights have no exact NNRt representation (NNRt quantization is per-tensor or
    // per-channel 8-bit): with this on they are dequantized to F16 when their executor is compiled
    // (about 2 bytes per weight per executor on the device side); off, they stay on the CPU.
    bool dequantize = false;
    std::string cache_dir;     // NNRt's compilation cache (OH_NNCompilation_SetCache); "" = none
};
// Also read from $OHAI_NNRT_MIN_BATCH, $OHAI_NNRT_DEQUANTIZE (1/0) and $OHAI_NNRT_CACHE_DIR at start.
void set_nnrt_settings(const NnrtSettings & settings);
NnrtSettings nnrt_settings();

struct NnrtStats {
    uint64_t ops_offloaded = 0;          // matrix multiplications run on the device
    uint64_t ops_fallback = 0;           // ... that the device was asked to run but the CPU ran
    std::map<std::string, uint64_t> fallback_reasons;
    uint64_t executors_built = 0;
    uint64_t build_failures = 0;
    uint64_t run_failures = 0;
    double device_ms = 0;                // time of offloaded products: NNRt runs plus the copies in and out
    double copy_ms = 0;                  // ... of which copying activations in and results out (the adapter's share)
    bool device_disabled = false;        // failed too often: the CPU does everything from now on
};
NnrtStats nnrt_stats();

}  // namespace ohai
