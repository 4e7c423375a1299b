#include "nnrt_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace ohai::nnrt {

namespace {

struct Loaded {
    NnrtApi api;
    bool ok = false;
    std::string why_not;
};

std::vector<std::string> candidates(const char * name) {
    std::vector<std::string> out;
    if (const char * dir = std::getenv("OHAI_NNRT_LIBRARY_DIR"); dir && *dir) out.push_back(std::string(dir) + "/" + name);
    out.push_back(name);   // the dynamic linker's search: LD_LIBRARY_PATH, the system's library directories
    return out;
}

void * open_library(const char * name, std::string & errors) {
    for (const auto & path : candidates(name)) {
        // RTLD_LOCAL: NNRt's symbols must not bind anything else in the process.
        if (void * h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
        const char * e = ::dlerror();
        if (!errors.empty()) errors += "; ";
        errors += e ? e : path;
    }
    return nullptr;
}

// Resolves `name` from the runtime library first, then from core.
template <typename Fn>
bool resolve(Fn & slot, const char * name, void * runtime, void * core, std::string & missing) {
    void * sym = runtime ? ::dlsym(runtime, name) : nullptr;
    if (!sym && core) sym = ::dlsym(core, name);
    slot = reinterpret_cast<Fn>(sym);
    if (!sym) missing += missing.empty() ? name : std::string(", ") + name;
    return sym != nullptr;
}

Loaded load() {
    Loaded out;
    std::string errors;
    // API 11+: the runtime library registers the hardware devices in static initialisers, so it
    // must be loaded even though most functions live in core.
    void * runtime = open_library("libneural_network_runtime.so", errors);
    void * core = open_library("libneural_network_core.so", errors);
    if (!runtime && !core) {
        runtime = open_library("libneural_network_runtime.z.so", errors);   // OpenHarmony <= 4.0
    }
    if (!runtime && !core) {
        out.why_not = "the NNRt libraries are not installed (" + errors + ")";
        return out;
    }
    NnrtApi & a = out.api;
    std::string missing;
#define OHAI_NNRT_RESOLVE(name) resolve(a.name, #name, runtime, core, missing)
    OHAI_NNRT_RESOLVE(OH_NNDevice_GetAllDevicesID);
    OHAI_NNRT_RESOLVE(OH_NNDevice_GetName);
    OHAI_NNRT_RESOLVE(OH_NNDevice_GetType);
    OHAI_NNRT_RESOLVE(OH_NNTensorDesc_Create);
    OHAI_NNRT_RESOLVE(OH_NNTensorDesc_Destroy);
    OHAI_NNRT_RESOLVE(OH_NNTensorDesc_SetDataType);
    OHAI_NNRT_RESOLVE(OH_NNTensorDesc_SetShape);
    OHAI_NNRT_RESOLVE(OH_NNTensorDesc_SetFormat);
    OHAI_NNRT_RESOLVE(OH_NNTensorDesc_GetByteSize);
    OHAI_NNRT_RESOLVE(OH_NNCompilation_Construct);
    OHAI_NNRT_RESOLVE(OH_NNCompilation_SetDevice);
    OHAI_NNRT_RESOLVE(OH_NNCompilation_Build);
    OHAI_NNRT_RESOLVE(OH_NNCompilation_Destroy);
    OHAI_NNRT_RESOLVE(OH_NNExecutor_Construct);
    OHAI_NNRT_RESOLVE(OH_NNExecutor_CreateInputTensorDesc);
    OHAI_NNRT_RESOLVE(OH_NNExecutor_CreateOutputTensorDesc);
    OHAI_NNRT_RESOLVE(OH_NNExecutor_RunSync);
    OHAI_NNRT_RESOLVE(OH_NNExecutor_Destroy);
    OHAI_NNRT_RESOLVE(OH_NNTensor_Create);
    OHAI_NNRT_RESOLVE(OH_NNTensor_GetDataBuffer);
    OHAI_NNRT_RESOLVE(OH_NNTensor_Destroy);
    OHAI_NNRT_RESOLVE(OH_NNModel_Construct);
    OHAI_NNRT_RESOLVE(OH_NNModel_AddTensorToModel);
    OHAI_NNRT_RESOLVE(OH_NNModel_SetTensorData);
    OHAI_NNRT_RESOLVE(OH_NNModel_SetTensorType);
    OHAI_NNRT_RESOLVE(OH_NNModel_AddOperation);
    OHAI_NNRT_RESOLVE(OH_NNModel_SpecifyInputsAndOutputs);
    OHAI_NNRT_RESOLVE(OH_NNModel_Finish);
    OHAI_NNRT_RESOLVE(OH_NNModel_GetAvailableOperations);
    OHAI_NNRT_RESOLVE(OH_NNModel_Destroy);
#undef OHAI_NNRT_RESOLVE
    if (!missing.empty()) {
        out.why_not = "the NNRt libraries lack " + missing + " (too old for the adapter)";
        return out;   // the handles stay open: unloading a runtime that registered devices is unsafe
    }
    std::string optional;
    resolve(a.OH_NNCompilation_SetCache, "OH_NNCompilation_SetCache", runtime, core, optional);
    resolve(a.OH_NNCompilation_SetPerformanceMode, "OH_NNCompilation_SetPerformanceMode", runtime, core, optional);
    resolve(a.OH_NNCompilation_EnableFloat16, "OH_NNCompilation_EnableFloat16", runtime, core, optional);
    a.has_cache = a.OH_NNCompilation_SetCache != nullptr;
    out.ok = true;
    return out;
}

}  // namespace

const NnrtApi * nnrt_api(std::string * why_not) {
    static const Loaded loaded = load();
    if (why_not) *why_not = loaded.why_not;
    return loaded.ok ? &loaded.api : nullptr;
}

}  // namespace ohai::nnrt
