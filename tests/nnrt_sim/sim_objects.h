// ohai NNRt simulator — what the opaque NNRt handles are inside the simulator. The API's
// incomplete types are completed here, so handles need no casts. All mutable fields are guarded
// by state().mu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nnrt_api.h"

namespace ohai_sim {

constexpr size_t kMaxRank = 10;       // NNRt rejects shapes with more dimensions
constexpr uint32_t kMaxIoCount = 200; // operation / model / RunSync inputs and outputs: 1..200

struct TensorMeta {
    OH_NN_DataType dtype = OH_NN_UNKNOWN;
    std::vector<int32_t> shape;         // empty: a scalar; -1: a dynamic dimension
    OH_NN_Format format = OH_NN_FORMAT_NONE;
};

// Bytes per element; 0 for UNKNOWN or a value outside the enum.
size_t dtype_size(OH_NN_DataType t);
bool dtype_valid(int t);               // BOOL..FLOAT64 (UNKNOWN is not a type a tensor can have)

// An enum argument as the integer the C caller passed. Reading an enum object that holds a value
// outside its enumerators is undefined in C++, and callers may pass anything.
template <class E>
int raw(const E &e) {   // by reference: passing by value would already load it
    int v = 0;
    static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
    std::memcpy(&v, &e, sizeof v);
    return v;
}
bool is_dynamic(const std::vector<int32_t> &shape);
// Element count of a concrete shape (1 for a scalar); false when dynamic or absurdly large.
bool element_count(const std::vector<int32_t> &shape, size_t *count);
// dtype_size * element count; false when dynamic, too large or the type is unknown.
bool byte_size(const TensorMeta &meta, size_t *bytes);
std::string shape_text(const std::vector<int32_t> &shape);

struct ModelTensor {
    TensorMeta meta;
    int role = OH_NN_TENSOR;          // OH_NN_TensorType, kept as the caller's integer
    std::vector<uint8_t> data;        // copy of SetTensorData's buffer
    bool has_data = false;
    bool is_model_input = false;
    bool is_model_output = false;
    int producer = -1;                // index of the operation that writes it
};

struct Operation {
    int type = OH_NN_OPS_MATMUL;      // OH_NN_OperationType, kept as the caller's integer
    std::vector<uint32_t> params, inputs, outputs;
    // Parameter values, read when the operation was added (as NNRt does).
    bool transpose_a = false;
    bool transpose_b = false;
    int activation = OH_NN_FUSED_NONE;
    bool has_axis = false;
    int64_t axis = 0;
};

}  // namespace ohai_sim

struct NN_TensorDesc {
    ohai_sim::TensorMeta meta;
};

struct OH_NNModel {
    uint64_t serial = 0;                 // tells a reused address from the model a compilation saw
    std::vector<ohai_sim::ModelTensor> tensors;
    std::vector<ohai_sim::Operation> ops;
    std::vector<uint32_t> inputs, outputs;
    bool io_specified = false;
    bool finished = false;
    std::unique_ptr<bool[]> supported;   // GetAvailableOperations' answer, owned by the model
};

namespace ohai_sim {
struct Program;   // sim_compute.h
}

struct OH_NNCompilation {
    enum class Stage { kOpen, kBuilt, kFailed };
    const OH_NNModel *model = nullptr;   // not owned; must stay alive until Build
    uint64_t model_serial = 0;
    size_t device_id = 0;
    bool cache_set = false;
    std::string cache_dir;
    uint32_t cache_version = 0;
    OH_NN_PerformanceMode performance = OH_NN_PERFORMANCE_NONE;
    bool float16 = false;
    Stage stage = Stage::kOpen;
    std::shared_ptr<const ohai_sim::Program> program;   // after a successful Build
};

struct OH_NNExecutor {
    std::shared_ptr<const ohai_sim::Program> program;   // outlives the compilation
};

struct NN_Tensor {
    ohai_sim::TensorMeta meta;
    size_t device_id = 0;
    size_t bytes = 0;
    uint8_t *buffer = nullptr;          // 64-byte aligned, owned
};
