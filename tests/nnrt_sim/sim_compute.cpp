// ohai NNRt simulator — the simulated NPU: capability rules, compilation, and the arithmetic.
// The arithmetic is plain float32 on the CPU; it only has to be right and not absurdly slow, so
// that a benchmark of the adapter measures the adapter's overhead rather than a naive loop.
#include "sim_compute.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

namespace ohai_sim {

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        // Zero or subnormal: man * 2^-24 is exact in float.
        const float v = static_cast<float>(man) * (1.0f / 16777216.0f);
        std::memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {   // infinity or NaN (NaN stays NaN)
        return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
    }
    if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);   // >= 65520 rounds to infinity
    if (ax < 0x38800000u) {
        // Below the smallest normal half (2^-14): a multiple of 2^-24, rounded to nearest even.
        const int e = static_cast<int>(ax >> 23);
        const int shift = 126 - e;
        if (shift > 24) return sign;
        const uint32_t man = (ax & 0x7fffffu) | 0x800000u;
        uint32_t r = man >> shift;
        const uint32_t rem = man & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) ++r;
        return static_cast<uint16_t>(sign | r);
    }
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax & 0x7fffffu) >> 13);
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;   // a carry into the exponent is right
    return static_cast<uint16_t>(sign | h);
}

namespace {

float round_half(float f) { return half_to_float(float_to_half(f)); }

bool is_float_type(OH_NN_DataType t) { return t == OH_NN_FLOAT32 || t == OH_NN_FLOAT16; }

std::vector<size_t> dims(const std::vector<int32_t> &shape) { return std::vector<size_t>(shape.begin(), shape.end()); }

size_t product(const std::vector<size_t> &d, size_t begin, size_t end) {
    size_t p = 1;
    for (size_t i = begin; i < end; ++i) p *= d[i];
    return p;
}

// C = A · Bᵀ with A [M, K], B [N, K], C [M, N], all row-major.
struct MatmulGeometry {
    size_t m = 0, n = 0, k = 0;
    std::vector<int32_t> out_shape;
    size_t batches = 1;                 // output batches
    std::vector<size_t> out_batch;      // output batch dims
    std::vector<size_t> a_stride, b_stride;   // per output batch dim, in matrices (0: broadcast)
    size_t b_batches = 1;
};

std::string matmul_geometry(const std::vector<int32_t> &as, const std::vector<int32_t> &bs, bool ta, bool tb,
                            MatmulGeometry *g) {
    if (as.size() < 2 || bs.size() < 2) return "MATMUL operands need at least 2 dimensions";
    const std::vector<size_t> a = dims(as), b = dims(bs);
    const size_t ra = a.size(), rb = b.size();
    g->m = ta ? a[ra - 1] : a[ra - 2];
    g->k = ta ? a[ra - 2] : a[ra - 1];
    const size_t kb = tb ? b[rb - 1] : b[rb - 2];
    g->n = tb ? b[rb - 2] : b[rb - 1];
    if (g->k != kb) {
        return "MATMUL inner dimensions differ: " + shape_text(as) + (ta ? "ᵀ" : "") + " · " + shape_text(bs) +
               (tb ? "ᵀ" : "");
    }
    const size_t na = ra - 2, nb = rb - 2, no = std::max(na, nb);
    g->out_batch.assign(no, 1);
    std::vector<size_t> da(no, 1), db(no, 1);
    for (size_t i = 0; i < na; ++i) da[no - na + i] = a[i];
    for (size_t i = 0; i < nb; ++i) db[no - nb + i] = b[i];
    for (size_t i = 0; i < no; ++i) {
        if (da[i] != db[i] && da[i] != 1 && db[i] != 1) {
            return "MATMUL batch dimensions do not broadcast: " + shape_text(as) + " · " + shape_text(bs);
        }
        g->out_batch[i] = std::max(da[i], db[i]);
    }
    g->a_stride.assign(no, 0);
    g->b_stride.assign(no, 0);
    size_t sa = 1, sb = 1;
    for (size_t i = no; i-- > 0;) {
        g->a_stride[i] = da[i] == 1 ? 0 : sa;
        g->b_stride[i] = db[i] == 1 ? 0 : sb;
        sa *= da[i];
        sb *= db[i];
    }
    g->b_batches = sb;
    g->batches = product(g->out_batch, 0, no);
    g->out_shape.assign(g->out_batch.begin(), g->out_batch.end());
    g->out_shape.push_back(static_cast<int32_t>(g->m));
    g->out_shape.push_back(static_cast<int32_t>(g->n));
    return "";
}

struct FcGeometry {
    size_t m = 0, n = 0, k = 0;
};

std::string fc_geometry(const std::vector<int32_t> &xs, const std::vector<int32_t> &ws, const Operation &op,
                        FcGeometry *g) {
    if (ws.size() != 2) return "FULL_CONNECTION weight must be [N, K], got " + shape_text(ws);
    if (xs.empty()) return "FULL_CONNECTION input must have at least 1 dimension";
    const std::vector<size_t> x = dims(xs);
    g->n = static_cast<size_t>(ws[0]);
    g->k = static_cast<size_t>(ws[1]);
    size_t split = x.size() - 1;   // without an axis the last dimension is K
    if (op.has_axis) {
        int64_t axis = op.axis < 0 ? op.axis + static_cast<int64_t>(x.size()) : op.axis;
        if (axis < 0 || axis >= static_cast<int64_t>(x.size())) {
            return "FULL_CONNECTION axis " + std::to_string(op.axis) + " is outside input " + shape_text(xs);
        }
        split = static_cast<size_t>(axis);
    }
    g->m = product(x, 0, split);
    const size_t kx = product(x, split, x.size());
    if (kx != g->k) {
        return "FULL_CONNECTION input " + shape_text(xs) + " does not match weight " + shape_text(ws);
    }
    return "";
}

std::string float_types(const std::vector<ModelTensor> &t, const Operation &op) {
    for (uint32_t i : op.inputs) {
        if (!is_float_type(t[i].meta.dtype)) return "input tensor " + std::to_string(i) + " is not FLOAT32/FLOAT16";
    }
    for (uint32_t i : op.outputs) {
        if (!is_float_type(t[i].meta.dtype)) return "output tensor " + std::to_string(i) + " is not FLOAT32/FLOAT16";
    }
    return "";
}

void transpose(const float *src, size_t rows, size_t cols, float *dst) {
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
    }
}

float dot(const float *a, const float *b, size_t k) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < k; ++i) s += a[i] * b[i];
    return s;
}

// Blocks of B rows stay in cache while every row of A passes by; blocks are shared out to threads.
void gemm_nt(const float *a, const float *b, float *c, size_t m, size_t n, size_t k, unsigned threads) {
    constexpr size_t kBlock = 16;
    const size_t blocks = (n + kBlock - 1) / kBlock;
    auto work = [&](size_t first, size_t last) {
        for (size_t blk = first; blk < last; ++blk) {
            const size_t j0 = blk * kBlock, j1 = std::min(n, j0 + kBlock);
            for (size_t i = 0; i < m; ++i) {
                const float *ai = a + i * k;
                float *ci = c + i * n;
                for (size_t j = j0; j < j1; ++j) ci[j] = dot(ai, b + j * k, k);
            }
        }
    };
    size_t t = threads;
    if (static_cast<double>(m) * n * k < double(1 << 21)) t = 1;   // threads cost more than they save
    t = std::min(t, blocks);
    if (t <= 1) {
        work(0, blocks);
        return;
    }
    std::vector<std::thread> pool;
    const size_t per = (blocks + t - 1) / t;
    size_t done = per;   // this thread takes the first share
    try {
        for (size_t first = per; first < blocks; first += per) {
            pool.emplace_back(work, first, std::min(blocks, first + per));
            done = first + per;
        }
    } catch (...) {
        // No more threads: the remainder is done here.
        work(done, blocks);
    }
    work(0, std::min(per, blocks));
    for (std::thread &th : pool) th.join();
}

size_t batch_offset(size_t flat, const std::vector<size_t> &out_batch, const std::vector<size_t> &stride) {
    size_t off = 0;
    for (size_t i = out_batch.size(); i-- > 0;) {
        off += (flat % out_batch[i]) * stride[i];
        flat /= out_batch[i];
    }
    return off;
}

uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const auto *b = static_cast<const uint8_t *>(p);
    for (size_t i = 0; i < n; ++i) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

template <class T>
uint64_t fnv_value(uint64_t h, const T &v) {
    return fnv(h, &v, sizeof v);
}

uint64_t fnv_indices(uint64_t h, const std::vector<uint32_t> &v) {
    h = fnv_value(h, v.size());
    return v.empty() ? h : fnv(h, v.data(), v.size() * sizeof v[0]);
}

void to_float(const void *src, OH_NN_DataType t, size_t n, bool round16, float *dst) {
    if (t == OH_NN_FLOAT16) {
        const auto *h = static_cast<const uint16_t *>(src);
        for (size_t i = 0; i < n; ++i) dst[i] = half_to_float(h[i]);
    } else {
        std::memcpy(dst, src, n * sizeof(float));
        if (round16) {
            for (size_t i = 0; i < n; ++i) dst[i] = round_half(dst[i]);
        }
    }
}

}  // namespace

std::string device_support(const std::vector<ModelTensor> &t, const Operation &op) {
    if (op.type != OH_NN_OPS_MATMUL && op.type != OH_NN_OPS_FULL_CONNECTION) {
        return "operation type " + std::to_string(op.type) + " is not supported by the simulated device";
    }
    if (op.activation != OH_NN_FUSED_NONE) return "only activation NONE is supported";
    if (op.inputs.size() != 2 || op.outputs.size() != 1) return "expects 2 inputs and 1 output";
    for (uint32_t i : op.inputs) {
        if (is_dynamic(t[i].meta.shape)) return "dynamic shapes are not supported";
    }
    if (is_dynamic(t[op.outputs[0]].meta.shape)) return "dynamic shapes are not supported";
    std::string why = float_types(t, op);
    if (!why.empty()) return why;
    const auto &a = t[op.inputs[0]].meta.shape, &b = t[op.inputs[1]].meta.shape;
    const auto &out = t[op.outputs[0]].meta.shape;
    if (op.type == OH_NN_OPS_MATMUL) {
        MatmulGeometry g;
        why = matmul_geometry(a, b, op.transpose_a, op.transpose_b, &g);
        if (!why.empty()) return why;
        if (out != g.out_shape) return "MATMUL output should be " + shape_text(g.out_shape) + ", not " + shape_text(out);
        return "";
    }
    FcGeometry g;
    why = fc_geometry(a, b, op, &g);
    if (!why.empty()) return why;
    size_t count = 0;
    if (out.empty() || static_cast<size_t>(out.back()) != g.n || !element_count(out, &count) || count != g.m * g.n) {
        return "FULL_CONNECTION output should hold [" + std::to_string(g.m) + ", " + std::to_string(g.n) + "], not " +
               shape_text(out);
    }
    return "";
}

std::shared_ptr<Program> compile_program(const OH_NNModel &model, bool float16, std::string *why) {
    for (size_t i = 0; i < model.ops.size(); ++i) {
        const std::string reason = device_support(model.tensors, model.ops[i]);
        if (!reason.empty()) {
            *why = "operation " + std::to_string(i) + ": " + reason;
            return nullptr;
        }
    }
    for (uint32_t i : model.inputs) {
        if (!is_float_type(model.tensors[i].meta.dtype) || is_dynamic(model.tensors[i].meta.shape)) {
            *why = "model input " + std::to_string(i) + " must be a FLOAT32/FLOAT16 tensor of fixed shape";
            return nullptr;
        }
    }
    for (uint32_t i : model.outputs) {
        if (!is_float_type(model.tensors[i].meta.dtype) || is_dynamic(model.tensors[i].meta.shape)) {
            *why = "model output " + std::to_string(i) + " must be a FLOAT32/FLOAT16 tensor of fixed shape";
            return nullptr;
        }
    }
    auto p = std::make_shared<Program>();
    p->float16 = float16;
    p->ops = model.ops;
    p->inputs = model.inputs;
    p->outputs = model.outputs;
    p->constants.resize(model.tensors.size());
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const ModelTensor &t = model.tensors[i];
        p->tensors.push_back(t.meta);
        if (t.role != OH_NN_TENSOR || !t.has_data || !is_float_type(t.meta.dtype)) continue;
        size_t n = 0;
        element_count(t.meta.shape, &n);
        p->constants[i].resize(n);
        to_float(t.data.data(), t.meta.dtype, n, float16, p->constants[i].data());
    }
    // A constant MATMUL right operand is laid out once as [batch][N][K], which the kernel reads.
    p->prepared_b.resize(p->ops.size());
    for (size_t i = 0; i < p->ops.size(); ++i) {
        const Operation &op = p->ops[i];
        if (op.type != OH_NN_OPS_MATMUL || p->constants[op.inputs[1]].empty() || op.transpose_b) continue;
        MatmulGeometry g;
        matmul_geometry(p->tensors[op.inputs[0]].shape, p->tensors[op.inputs[1]].shape, op.transpose_a, op.transpose_b, &g);
        const std::vector<float> &src = p->constants[op.inputs[1]];
        std::vector<float> &dst = p->prepared_b[i];
        dst.resize(src.size());
        for (size_t bi = 0; bi < g.b_batches; ++bi) {
            transpose(src.data() + bi * g.k * g.n, g.k, g.n, dst.data() + bi * g.k * g.n);
        }
    }
    return p;
}

uint64_t model_hash(const OH_NNModel &model) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv_value(h, model.tensors.size());
    for (const ModelTensor &t : model.tensors) {
        h = fnv_value(h, t.meta.dtype);
        h = fnv_value(h, t.meta.shape.size());
        if (!t.meta.shape.empty()) h = fnv(h, t.meta.shape.data(), t.meta.shape.size() * sizeof(int32_t));
        h = fnv_value(h, t.role);
        h = fnv_value(h, t.has_data);
        if (t.has_data) h = fnv(h, t.data.data(), t.data.size());
    }
    h = fnv_value(h, model.ops.size());
    for (const Operation &op : model.ops) {
        h = fnv_value(h, op.type);
        h = fnv_indices(h, op.params);
        h = fnv_indices(h, op.inputs);
        h = fnv_indices(h, op.outputs);
    }
    h = fnv_indices(h, model.inputs);
    return fnv_indices(h, model.outputs);
}

std::vector<int32_t> reported_output_shape(const std::vector<int32_t> &shape, bool wrong_size) {
    if (!wrong_size) return shape;
    std::vector<int32_t> s = shape;
    if (s.empty()) {
        s.push_back(2);
    } else {
        s.back() += 1;
    }
    return s;
}

RunCounts run_program(const Program &p, const void *const *inputs, void *const *outputs, bool wrong_size,
                      unsigned threads) {
    RunCounts counts;
    std::vector<std::vector<float>> owned(p.tensors.size());
    std::vector<const float *> value(p.tensors.size(), nullptr);
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        if (!p.constants[i].empty()) value[i] = p.constants[i].data();
    }
    for (size_t i = 0; i < p.inputs.size(); ++i) {
        const uint32_t idx = p.inputs[i];
        size_t n = 0;
        element_count(p.tensors[idx].shape, &n);
        owned[idx].resize(n);
        to_float(inputs[i], p.tensors[idx].dtype, n, p.float16, owned[idx].data());
        value[idx] = owned[idx].data();
    }
    std::vector<float> tmp_a, tmp_b;
    for (size_t oi = 0; oi < p.ops.size(); ++oi) {
        const Operation &op = p.ops[oi];
        const uint32_t out = op.outputs[0];
        size_t n_out = 0;
        element_count(p.tensors[out].shape, &n_out);
        std::vector<float> result(n_out);
        const float *a = value[op.inputs[0]];
        const float *b = value[op.inputs[1]];
        if (op.type == OH_NN_OPS_FULL_CONNECTION) {
            FcGeometry g;
            fc_geometry(p.tensors[op.inputs[0]].shape, p.tensors[op.inputs[1]].shape, op, &g);
            gemm_nt(a, b, result.data(), g.m, g.n, g.k, threads);
            counts.macs += static_cast<long long>(g.m * g.n * g.k);
        } else {
            MatmulGeometry g;
            matmul_geometry(p.tensors[op.inputs[0]].shape, p.tensors[op.inputs[1]].shape, op.transpose_a,
                            op.transpose_b, &g);
            const size_t a_mat = g.m * g.k, b_mat = g.n * g.k;
            const std::vector<float> &prepared = p.prepared_b[oi];
            for (size_t t = 0; t < g.batches; ++t) {
                const float *at = a + batch_offset(t, g.out_batch, g.a_stride) * a_mat;
                if (op.transpose_a) {   // stored [K, M]
                    tmp_a.resize(a_mat);
                    transpose(at, g.k, g.m, tmp_a.data());
                    at = tmp_a.data();
                }
                const size_t boff = batch_offset(t, g.out_batch, g.b_stride) * b_mat;
                const float *bt;
                if (!prepared.empty()) {
                    bt = prepared.data() + boff;
                } else if (op.transpose_b) {   // stored [N, K] already
                    bt = b + boff;
                } else {
                    tmp_b.resize(b_mat);
                    transpose(b + boff, g.k, g.n, tmp_b.data());
                    bt = tmp_b.data();
                }
                gemm_nt(at, bt, result.data() + t * g.m * g.n, g.m, g.n, g.k, threads);
            }
            counts.macs += static_cast<long long>(g.batches * g.m * g.n * g.k);
        }
        // What the next operation sees is what the declared type can hold.
        if (p.tensors[out].dtype == OH_NN_FLOAT16 || p.float16) {
            for (float &v : result) v = round_half(v);
        }
        owned[out] = std::move(result);
        value[out] = owned[out].data();
        ++counts.ops;
    }
    for (size_t i = 0; i < p.outputs.size(); ++i) {
        const TensorMeta &meta = p.tensors[p.outputs[i]];
        const float *src = value[p.outputs[i]];
        size_t n = 0;
        element_count(meta.shape, &n);
        // Rows of the declared last dimension, written with the reported row length.
        const size_t row = meta.shape.empty() ? 1 : static_cast<size_t>(meta.shape.back());
        const size_t rows = n / row;
        const size_t out_row = wrong_size ? row + 1 : row;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        for (size_t r = 0; r < rows; ++r) {
            for (size_t c = 0; c < out_row; ++c) {
                const float v = c < row ? src[r * row + c] : nan;
                const size_t at = r * out_row + c;
                if (meta.dtype == OH_NN_FLOAT16) {
                    static_cast<uint16_t *>(outputs[i])[at] = float_to_half(v);
                } else {
                    static_cast<float *>(outputs[i])[at] = v;
                }
            }
        }
    }
    return counts;
}

}  // namespace ohai_sim
