// ohai NNRt simulator — libneural_network_runtime.so: model building (OH_NNModel_*), and, as on
// a real system, the hardware device: its static initializer registers the simulated NPU with
// libneural_network_core.so (a DT_NEEDED dependency, so one dlopen of this library brings core
// along). The model functions are core's (sim_model.cpp), handed over by the registration.
#include <type_traits>

#include "nnrt_sim.h"
#include "sim_internal.h"

#define OHAI_SIM_API extern "C" __attribute__((visibility("default")))

namespace {

const OhaiNnrtSimDeviceInfo kDevice = {
    OHAI_NNRT_SIM_ABI,
    static_cast<uint64_t>(OHAI_NNRT_SIM_DEVICE_ID),
    OHAI_NNRT_SIM_DEVICE_NAME,   // "<device>_<vendor>_v<major>_<minor>", as NNRt names devices
    OH_NN_ACCELERATOR,
};

// Runs when this library is loaded, before dlopen() returns.
const OhaiNnrtSimModelApi *const g_model = ohai_nnrt_sim_register_device(&kDevice);

}  // namespace

OHAI_SIM_API OH_NNModel *OH_NNModel_Construct(void) { return g_model ? g_model->construct() : nullptr; }

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_AddTensorToModel(OH_NNModel *model, const NN_TensorDesc *tensorDesc) {
    return g_model ? g_model->add_tensor(model, tensorDesc) : OH_NN_FAILED;
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_SetTensorData(OH_NNModel *model, uint32_t index, const void *dataBuffer,
                                                       size_t length) {
    return g_model ? g_model->set_tensor_data(model, index, dataBuffer, length) : OH_NN_FAILED;
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_SetTensorType(OH_NNModel *model, uint32_t index, OH_NN_TensorType tensorType) {
    return g_model ? g_model->set_tensor_type(model, index, tensorType) : OH_NN_FAILED;
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_AddOperation(OH_NNModel *model, OH_NN_OperationType op,
                                                      const OH_NN_UInt32Array *paramIndices,
                                                      const OH_NN_UInt32Array *inputIndices,
                                                      const OH_NN_UInt32Array *outputIndices) {
    return g_model ? g_model->add_operation(model, op, paramIndices, inputIndices, outputIndices) : OH_NN_FAILED;
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_SpecifyInputsAndOutputs(OH_NNModel *model, const OH_NN_UInt32Array *inputIndices,
                                                                 const OH_NN_UInt32Array *outputIndices) {
    return g_model ? g_model->specify_inputs_and_outputs(model, inputIndices, outputIndices) : OH_NN_FAILED;
}

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_Finish(OH_NNModel *model) { return g_model ? g_model->finish(model) : OH_NN_FAILED; }

OHAI_SIM_API OH_NN_ReturnCode OH_NNModel_GetAvailableOperations(OH_NNModel *model, size_t deviceID, const bool **isSupported,
                                                                uint32_t *opCount) {
    return g_model ? g_model->get_available_operations(model, deviceID, isSupported, opCount) : OH_NN_FAILED;
}

OHAI_SIM_API void OH_NNModel_Destroy(OH_NNModel **model) {
    if (g_model) g_model->destroy(model);
}

#define OHAI_SIM_SIGNATURE(name) \
    static_assert(std::is_same<decltype(&name), PFN_##name>::value, #name " does not match its PFN_ type")
OHAI_SIM_SIGNATURE(OH_NNModel_Construct);
OHAI_SIM_SIGNATURE(OH_NNModel_AddTensorToModel);
OHAI_SIM_SIGNATURE(OH_NNModel_SetTensorData);
OHAI_SIM_SIGNATURE(OH_NNModel_SetTensorType);
OHAI_SIM_SIGNATURE(OH_NNModel_AddOperation);
OHAI_SIM_SIGNATURE(OH_NNModel_SpecifyInputsAndOutputs);
OHAI_SIM_SIGNATURE(OH_NNModel_Finish);
OHAI_SIM_SIGNATURE(OH_NNModel_GetAvailableOperations);
OHAI_SIM_SIGNATURE(OH_NNModel_Destroy);
