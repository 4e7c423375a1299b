// ohai NNRt simulator — the simulated accelerator itself: which operations it accepts, the
// compiled form of a model, and float32 arithmetic on the CPU for MATMUL and FULL_CONNECTION.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim_objects.h"

namespace ohai_sim {

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);   // round to nearest even, overflow to infinity

// "" when the simulated NPU can run `op` over these tensors, otherwise why not. Faults are the
// caller's business.
std::string device_support(const std::vector<ModelTensor> &tensors, const Operation &op);

// A model compiled for the device: everything RunSync needs, independent of the OH_NNModel
// (which may be destroyed after Build) and of the compilation (which may be destroyed once an
// executor exists).
struct Program {
    std::vector<TensorMeta> tensors;
    std::vector<std::vector<float>> constants;   // per tensor: its constant data as float, or empty
    std::vector<Operation> ops;
    std::vector<std::vector<float>> prepared_b;  // per op: a constant MATMUL B as [batch][N][K], or empty
    std::vector<uint32_t> inputs, outputs;
    bool float16 = false;                        // EnableFloat16: operands rounded to F16 precision
};

// Checks every operation (device_support) and the model's inputs/outputs; nullptr and *why when
// the device cannot run the model.
std::shared_ptr<Program> compile_program(const OH_NNModel &model, bool float16, std::string *why);

// A fingerprint of everything that makes a compiled model (for the cache file).
uint64_t model_hash(const OH_NNModel &model);

// The output shape the executor reports: the model's, or with the last dimension one larger
// under the wrong_output_size fault.
std::vector<int32_t> reported_output_shape(const std::vector<int32_t> &shape, bool wrong_size);

struct RunCounts {
    long long ops = 0;
    long long macs = 0;
};

// inputs[i] / outputs[i]: buffers of the program's i-th input / output with their declared data
// types; outputs are laid out per reported_output_shape(shape, wrong_size) (extra elements NaN).
RunCounts run_program(const Program &program, const void *const *inputs, void *const *outputs, bool wrong_size,
                      unsigned threads);

}  // namespace ohai_sim
