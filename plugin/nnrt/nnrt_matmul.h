// ohai — one matrix multiplication with a constant weight, compiled for an NNRt device:
// y[rows, n] = x[rows, k] · W[n, k]ᵀ as an NNRt FULL_CONNECTION (the layout of ggml's MUL_MAT,
// whose weight rows are W's rows), for a fixed number of rows (NNRt compiles concrete shapes;
// fewer rows are padded with zeros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nnrt_loader.h"

namespace ohai::nnrt {

struct MatMulShape {
    int64_t n = 0;      // output features (weight rows)
    int64_t k = 0;      // input features
    int64_t rows = 0;   // compiled batch
};

class NnrtMatMul {
public:
    // Builds, checks (GetAvailableOperations, unless `known_supported`), compiles and prepares the
    // executor and its tensors. `weight` is n*k elements of `weight_type` (FLOAT16 or FLOAT32), read
    // during the call only. `cache_dir`: NNRt's compilation cache; each executor gets a
    // subdirectory named by a hash of its weight and shape (NNRt names cache files by model name,
    // which would make every executor restore the first one's). Returns null with `error` set on
    // an NNRt failure; `device_fault` says whether the failure points at the device (rather than
    // memory or the cache directory). May throw std::bad_alloc.
    static std::unique_ptr<NnrtMatMul> build(const NnrtApi & api, size_t device, const MatMulShape & shape,
                                             const void * weight, OH_NN_DataType weight_type,
                                             const std::string & cache_dir, bool known_supported,
                                             std::string & error, bool & device_fault);
    ~NnrtMatMul();
    NnrtMatMul(const NnrtMatMul &) = delete;
    NnrtMatMul & operator=(const NnrtMatMul &) = delete;

    // y (rows_used x n, row stride y_stride floats) = x (rows_used x k, row stride x_stride) · Wᵀ.
    // rows_used <= shape().rows. False with `error` set when NNRt fails (y is then undefined).
    // `copy_ms` (optional) receives the time spent copying in and out: the adapter's own share.
    bool run(const float * x, size_t x_stride, int64_t rows_used, float * y, size_t y_stride, std::string & error,
             double * copy_ms = nullptr);

    const MatMulShape & shape() const { return shape_; }

private:
    NnrtMatMul(const NnrtApi & api, MatMulShape shape) : api_(api), shape_(shape) {}
    const NnrtApi & api_;
    MatMulShape shape_;
    OH_NNExecutor * executor_ = nullptr;
    NN_Tensor * input_ = nullptr;
    NN_Tensor * output_ = nullptr;
};

}  // namespace ohai::nnrt
