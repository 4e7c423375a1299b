// ohai NNRt simulator — sizes and shapes of tensors.
#include "sim_objects.h"

namespace ohai_sim {

size_t dtype_size(OH_NN_DataType t) {
    switch (t) {
        case OH_NN_BOOL:
        case OH_NN_INT8:
        case OH_NN_UINT8: return 1;
        case OH_NN_INT16:
        case OH_NN_UINT16:
        case OH_NN_FLOAT16: return 2;
        case OH_NN_INT32:
        case OH_NN_UINT32:
        case OH_NN_FLOAT32: return 4;
        case OH_NN_INT64:
        case OH_NN_UINT64:
        case OH_NN_FLOAT64: return 8;
        default: return 0;
    }
}

bool dtype_valid(int t) { return t >= OH_NN_BOOL && t <= OH_NN_FLOAT64; }

bool is_dynamic(const std::vector<int32_t> &shape) {
    for (int32_t d : shape) {
        if (d == -1) return true;
    }
    return false;
}

bool element_count(const std::vector<int32_t> &shape, size_t *count) {
    size_t n = 1;
    for (int32_t d : shape) {
        if (d <= 0) return false;
        // 2^40 elements is far beyond anything a test builds; it keeps every later product safe.
        if (n > (size_t(1) << 40) / static_cast<size_t>(d)) return false;
        n *= static_cast<size_t>(d);
    }
    *count = n;
    return true;
}

bool byte_size(const TensorMeta &meta, size_t *bytes) {
    size_t n = 0;
    const size_t es = dtype_size(meta.dtype);
    if (es == 0 || !element_count(meta.shape, &n)) return false;
    *bytes = n * es;
    return true;
}

std::string shape_text(const std::vector<int32_t> &shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace ohai_sim
