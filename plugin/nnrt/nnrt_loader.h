// ohai — NNRt loaded at run time: a struct of function pointers filled by dlsym, so that ohai has
// no link-time dependency on OpenHarmony's Neural Network Runtime and runs CPU-only where it is
// absent (a PC, a board image without it, a device without an accelerator).
#pragma once

#include <string>

#include "nnrt_api.h"

namespace ohai::nnrt {

struct NnrtApi {
    // libneural_network_core.so (API 11+), or the single library of API 9/10.
    PFN_OH_NNDevice_GetAllDevicesID OH_NNDevice_GetAllDevicesID = nullptr;
    PFN_OH_NNDevice_GetName OH_NNDevice_GetName = nullptr;
    PFN_OH_NNDevice_GetType OH_NNDevice_GetType = nullptr;
    PFN_OH_NNTensorDesc_Create OH_NNTensorDesc_Create = nullptr;
    PFN_OH_NNTensorDesc_Destroy OH_NNTensorDesc_Destroy = nullptr;
    PFN_OH_NNTensorDesc_SetDataType OH_NNTensorDesc_SetDataType = nullptr;
    PFN_OH_NNTensorDesc_SetShape OH_NNTensorDesc_SetShape = nullptr;
    PFN_OH_NNTensorDesc_SetFormat OH_NNTensorDesc_SetFormat = nullptr;
    PFN_OH_NNTensorDesc_GetByteSize OH_NNTensorDesc_GetByteSize = nullptr;
    PFN_OH_NNCompilation_Construct OH_NNCompilation_Construct = nullptr;
    PFN_OH_NNCompilation_SetDevice OH_NNCompilation_SetDevice = nullptr;
    PFN_OH_NNCompilation_SetCache OH_NNCompilation_SetCache = nullptr;
    PFN_OH_NNCompilation_SetPerformanceMode OH_NNCompilation_SetPerformanceMode = nullptr;
    PFN_OH_NNCompilation_EnableFloat16 OH_NNCompilation_EnableFloat16 = nullptr;
    PFN_OH_NNCompilation_Build OH_NNCompilation_Build = nullptr;
    PFN_OH_NNCompilation_Destroy OH_NNCompilation_Destroy = nullptr;
    PFN_OH_NNExecutor_Construct OH_NNExecutor_Construct = nullptr;
    PFN_OH_NNExecutor_CreateInputTensorDesc OH_NNExecutor_CreateInputTensorDesc = nullptr;
    PFN_OH_NNExecutor_CreateOutputTensorDesc OH_NNExecutor_CreateOutputTensorDesc = nullptr;
    PFN_OH_NNExecutor_RunSync OH_NNExecutor_RunSync = nullptr;
    PFN_OH_NNExecutor_Destroy OH_NNExecutor_Destroy = nullptr;
    PFN_OH_NNTensor_Create OH_NNTensor_Create = nullptr;
    PFN_OH_NNTensor_GetDataBuffer OH_NNTensor_GetDataBuffer = nullptr;
    PFN_OH_NNTensor_Destroy OH_NNTensor_Destroy = nullptr;
    // libneural_network_runtime.so: model construction.
    PFN_OH_NNModel_Construct OH_NNModel_Construct = nullptr;
    PFN_OH_NNModel_AddTensorToModel OH_NNModel_AddTensorToModel = nullptr;
    PFN_OH_NNModel_SetTensorData OH_NNModel_SetTensorData = nullptr;
    PFN_OH_NNModel_SetTensorType OH_NNModel_SetTensorType = nullptr;
    PFN_OH_NNModel_AddOperation OH_NNModel_AddOperation = nullptr;
    PFN_OH_NNModel_SpecifyInputsAndOutputs OH_NNModel_SpecifyInputsAndOutputs = nullptr;
    PFN_OH_NNModel_Finish OH_NNModel_Finish = nullptr;
    PFN_OH_NNModel_GetAvailableOperations OH_NNModel_GetAvailableOperations = nullptr;
    PFN_OH_NNModel_Destroy OH_NNModel_Destroy = nullptr;
    // Optional (every NNRt has them, but the adapter works without): performance hints, cache.
    bool has_cache = false;
};

// The NNRt API, loaded on first use (thread-safe, once per process), or null when it is not
// there; `why_not` then says why (for `ohai devices`). Libraries are looked up by name through the
// dynamic linker — first in $OHAI_NNRT_LIBRARY_DIR when set — trying the API 11+ pair
// (libneural_network_runtime.so, which registers the hardware devices, and
// libneural_network_core.so) and then the single library of OpenHarmony 4.0 and earlier
// (libneural_network_runtime.z.so). A missing required symbol means "no NNRt".
const NnrtApi * nnrt_api(std::string * why_not = nullptr);

}  // namespace ohai::nnrt
