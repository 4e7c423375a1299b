// ohai NNRt simulator — the contract between its two libraries.
//
// On a real system libneural_network_runtime.so carries the hardware device drivers and registers
// them with libneural_network_core.so from static initializers, so loading core alone shows no
// device. The simulator does the same: the runtime library's static initializer calls
// ohai_nnrt_sim_register_device() (exported by core, the only non-API symbol besides the test
// functions of nnrt_sim.h). Model objects must be usable by core's compilation, so the model
// itself lives in core; registration hands back the model-building functions that the runtime
// library exports under the OH_NNModel_* names. Core therefore exports no OH_NNModel_* symbol,
// like the real core library.
#pragma once

#include <stdint.h>

#include "nnrt_api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OHAI_NNRT_SIM_ABI 1

typedef struct OhaiNnrtSimDeviceInfo {
    uint32_t abi;                 // OHAI_NNRT_SIM_ABI
    uint64_t id;                  // not 0: 0 means "the first device" in the API
    const char *name;             // copied by core
    OH_NN_DeviceType type;
} OhaiNnrtSimDeviceInfo;

typedef struct OhaiNnrtSimModelApi {
    uint32_t abi;
    PFN_OH_NNModel_Construct construct;
    PFN_OH_NNModel_AddTensorToModel add_tensor;
    PFN_OH_NNModel_SetTensorData set_tensor_data;
    PFN_OH_NNModel_SetTensorType set_tensor_type;
    PFN_OH_NNModel_AddOperation add_operation;
    PFN_OH_NNModel_SpecifyInputsAndOutputs specify_inputs_and_outputs;
    PFN_OH_NNModel_Finish finish;
    PFN_OH_NNModel_GetAvailableOperations get_available_operations;
    PFN_OH_NNModel_Destroy destroy;
} OhaiNnrtSimModelApi;

// Registers a device (a second registration of the same id is ignored) and returns core's model
// functions; NULL when the ABI does not match.
__attribute__((visibility("default"))) const OhaiNnrtSimModelApi *
ohai_nnrt_sim_register_device(const OhaiNnrtSimDeviceInfo *info);

#ifdef __cplusplus
}  // extern "C"
#endif
