// ohai — our declarations of the part of OpenHarmony's Neural Network Runtime (NNRt) C API that
// the adapter uses (facts from the public API headers: names, values and signatures; see
// /work/shared/reference/openharmony.md section 2). The adapter never links against NNRt: it
// loads the libraries at run time and resolves every function by name (nnrt_loader.h), so these
// are types and function-pointer types only.
//
// The simulated device for host tests (tests/nnrt_sim/) implements the same functions under the
// same names, from this header.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Opaque handles.
typedef struct OH_NNModel OH_NNModel;
typedef struct OH_NNCompilation OH_NNCompilation;
typedef struct OH_NNExecutor OH_NNExecutor;
typedef struct NN_QuantParam NN_QuantParam;
typedef struct NN_TensorDesc NN_TensorDesc;
typedef struct NN_Tensor NN_Tensor;

typedef enum {
    OH_NN_SUCCESS = 0,
    OH_NN_FAILED = 1,
    OH_NN_INVALID_PARAMETER = 2,
    OH_NN_MEMORY_ERROR = 3,
    OH_NN_OPERATION_FORBIDDEN = 4,
    OH_NN_NULL_PTR = 5,
    OH_NN_INVALID_FILE = 6,
    OH_NN_UNAVALIDABLE_DEVICE = 7,   // deprecated (sic)
    OH_NN_INVALID_PATH = 8,
    OH_NN_TIMEOUT = 9,
    OH_NN_UNSUPPORTED = 10,
    OH_NN_CONNECTION_EXCEPTION = 11,
    OH_NN_SAVE_CACHE_EXCEPTION = 12,
    OH_NN_DYNAMIC_SHAPE = 13,
    OH_NN_UNAVAILABLE_DEVICE = 14,
} OH_NN_ReturnCode;

typedef enum {
    OH_NN_OTHERS = 0,
    OH_NN_CPU = 1,
    OH_NN_GPU = 2,
    OH_NN_ACCELERATOR = 3,
} OH_NN_DeviceType;

typedef enum {
    OH_NN_UNKNOWN = 0,
    OH_NN_BOOL = 1,
    OH_NN_INT8 = 2,
    OH_NN_INT16 = 3,
    OH_NN_INT32 = 4,
    OH_NN_INT64 = 5,
    OH_NN_UINT8 = 6,
    OH_NN_UINT16 = 7,
    OH_NN_UINT32 = 8,
    OH_NN_UINT64 = 9,
    OH_NN_FLOAT16 = 10,
    OH_NN_FLOAT32 = 11,
    OH_NN_FLOAT64 = 12,
} OH_NN_DataType;

typedef enum {
    OH_NN_FORMAT_NONE = 0,
    OH_NN_FORMAT_NCHW = 1,
    OH_NN_FORMAT_NHWC = 2,
    OH_NN_FORMAT_ND = 3,
} OH_NN_Format;

// Operation types (the subset relevant to LLM work).
typedef enum {
    OH_NN_OPS_ADD = 1,
    OH_NN_OPS_CONCAT = 7,
    OH_NN_OPS_FULL_CONNECTION = 15,
    OH_NN_OPS_GATHER = 16,
    OH_NN_OPS_MATMUL = 19,
    OH_NN_OPS_MUL = 22,
    OH_NN_OPS_SOFTMAX = 30,
    OH_NN_OPS_SUB = 38,
    OH_NN_OPS_TRANSPOSE = 41,
    OH_NN_OPS_REDUCE_MEAN = 42,
    OH_NN_OPS_RSQRT = 44,
    OH_NN_OPS_RESHAPE = 45,
    OH_NN_OPS_LAYER_NORM = 49,
    OH_NN_OPS_GELU = 56,
    OH_NN_OPS_EXP = 60,
    OH_NN_OPS_SWISH = 105,
} OH_NN_OperationType;

// Tensor roles: data tensors are OH_NN_TENSOR; operation parameters have their own types.
typedef enum {
    OH_NN_TENSOR = 0,
    OH_NN_FULL_CONNECTION_AXIS = 31,            // INT64 scalar
    OH_NN_FULL_CONNECTION_ACTIVATIONTYPE = 32,  // INT8 scalar (OH_NN_FuseType)
    OH_NN_MATMUL_TRANSPOSE_A = 33,              // BOOL scalar
    OH_NN_MATMUL_TRANSPOSE_B = 34,              // BOOL scalar
    OH_NN_MATMUL_ACTIVATION_TYPE = 35,          // INT8 scalar (OH_NN_FuseType)
    OH_NN_FULL_CONNECTION_HAS_BIAS = 111,       // BOOL, API 12+
    OH_NN_FULL_CONNECTION_USE_AXIS = 112,       // BOOL, API 12+
} OH_NN_TensorType;

// OH_NN_FuseType is an int8_t enum upstream; it travels as an INT8 scalar tensor.
#define OH_NN_FUSED_NONE 0
#define OH_NN_FUSED_RELU 1
#define OH_NN_FUSED_RELU6 2

typedef enum {
    OH_NN_PERFORMANCE_NONE = 0,
    OH_NN_PERFORMANCE_LOW = 1,
    OH_NN_PERFORMANCE_MEDIUM = 2,
    OH_NN_PERFORMANCE_HIGH = 3,
    OH_NN_PERFORMANCE_EXTREME = 4,
} OH_NN_PerformanceMode;

typedef enum {
    OH_NN_PRIORITY_NONE = 0,
    OH_NN_PRIORITY_LOW = 1,
    OH_NN_PRIORITY_MEDIUM = 2,
    OH_NN_PRIORITY_HIGH = 3,
} OH_NN_Priority;

typedef struct OH_NN_UInt32Array {
    uint32_t *data;
    uint32_t size;
} OH_NN_UInt32Array;

// ---- libneural_network_core.so (API 11+): devices, tensor descriptors, compilation, execution.
typedef OH_NN_ReturnCode (*PFN_OH_NNDevice_GetAllDevicesID)(const size_t **allDevicesID, uint32_t *deviceCount);
typedef OH_NN_ReturnCode (*PFN_OH_NNDevice_GetName)(size_t deviceID, const char **name);
typedef OH_NN_ReturnCode (*PFN_OH_NNDevice_GetType)(size_t deviceID, OH_NN_DeviceType *deviceType);

typedef NN_TensorDesc *(*PFN_OH_NNTensorDesc_Create)(void);
typedef OH_NN_ReturnCode (*PFN_OH_NNTensorDesc_Destroy)(NN_TensorDesc **tensorDesc);
typedef OH_NN_ReturnCode (*PFN_OH_NNTensorDesc_SetDataType)(NN_TensorDesc *tensorDesc, OH_NN_DataType dataType);
typedef OH_NN_ReturnCode (*PFN_OH_NNTensorDesc_SetShape)(NN_TensorDesc *tensorDesc, const int32_t *shape, size_t shapeLength);
typedef OH_NN_ReturnCode (*PFN_OH_NNTensorDesc_SetFormat)(NN_TensorDesc *tensorDesc, OH_NN_Format format);
typedef OH_NN_ReturnCode (*PFN_OH_NNTensorDesc_GetByteSize)(const NN_TensorDesc *tensorDesc, size_t *byteSize);

typedef OH_NNCompilation *(*PFN_OH_NNCompilation_Construct)(const OH_NNModel *model);
typedef OH_NN_ReturnCode (*PFN_OH_NNCompilation_SetDevice)(OH_NNCompilation *compilation, size_t deviceID);
typedef OH_NN_ReturnCode (*PFN_OH_NNCompilation_SetCache)(OH_NNCompilation *compilation, const char *cachePath, uint32_t version);
typedef OH_NN_ReturnCode (*PFN_OH_NNCompilation_SetPerformanceMode)(OH_NNCompilation *compilation, OH_NN_PerformanceMode mode);
typedef OH_NN_ReturnCode (*PFN_OH_NNCompilation_EnableFloat16)(OH_NNCompilation *compilation, bool enableFloat16);
typedef OH_NN_ReturnCode (*PFN_OH_NNCompilation_Build)(OH_NNCompilation *compilation);
typedef void (*PFN_OH_NNCompilation_Destroy)(OH_NNCompilation **compilation);

typedef OH_NNExecutor *(*PFN_OH_NNExecutor_Construct)(OH_NNCompilation *compilation);
typedef NN_TensorDesc *(*PFN_OH_NNExecutor_CreateInputTensorDesc)(const OH_NNExecutor *executor, size_t index);
typedef NN_TensorDesc *(*PFN_OH_NNExecutor_CreateOutputTensorDesc)(const OH_NNExecutor *executor, size_t index);
typedef OH_NN_ReturnCode (*PFN_OH_NNExecutor_RunSync)(OH_NNExecutor *executor, NN_Tensor *inputTensor[], size_t inputCount,
                                                      NN_Tensor *outputTensor[], size_t outputCount);
typedef void (*PFN_OH_NNExecutor_Destroy)(OH_NNExecutor **executor);

typedef NN_Tensor *(*PFN_OH_NNTensor_Create)(size_t deviceID, NN_TensorDesc *tensorDesc);
typedef void *(*PFN_OH_NNTensor_GetDataBuffer)(const NN_Tensor *tensor);
typedef OH_NN_ReturnCode (*PFN_OH_NNTensor_Destroy)(NN_Tensor **tensor);

// ---- libneural_network_runtime.so: model construction (API 9+) and quantization parameters.
typedef OH_NNModel *(*PFN_OH_NNModel_Construct)(void);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_AddTensorToModel)(OH_NNModel *model, const NN_TensorDesc *tensorDesc);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_SetTensorData)(OH_NNModel *model, uint32_t index, const void *dataBuffer, size_t length);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_SetTensorType)(OH_NNModel *model, uint32_t index, OH_NN_TensorType tensorType);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_AddOperation)(OH_NNModel *model, OH_NN_OperationType op,
                                                        const OH_NN_UInt32Array *paramIndices,
                                                        const OH_NN_UInt32Array *inputIndices,
                                                        const OH_NN_UInt32Array *outputIndices);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_SpecifyInputsAndOutputs)(OH_NNModel *model, const OH_NN_UInt32Array *inputIndices,
                                                                   const OH_NN_UInt32Array *outputIndices);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_Finish)(OH_NNModel *model);
typedef OH_NN_ReturnCode (*PFN_OH_NNModel_GetAvailableOperations)(OH_NNModel *model, size_t deviceID,
                                                                  const bool **isSupported, uint32_t *opCount);
typedef void (*PFN_OH_NNModel_Destroy)(OH_NNModel **model);

#ifdef __cplusplus
}  // extern "C"
#endif
