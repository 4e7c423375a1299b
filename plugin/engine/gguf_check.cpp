#include "gguf_check.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ggml.h"
#include "gguf_roles.h"
#include "ohai/error.h"

namespace ohai {
namespace {

// GGUF value types (gguf spec): 0..12.
enum : uint32_t { T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL,
                  T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64, T_COUNT };

// Limits of llama.cpp (build 0c1e570) and of sane files.
constexpr int64_t kMaxLayers = 512;                     // LLAMA_MAX_LAYERS
constexpr int64_t kMaxExperts = 1024;                   // LLAMA_MAX_EXPERTS
constexpr int64_t kMaxU32 = UINT32_MAX;                 // llama.cpp keeps counts and their products in uint32_t
constexpr int64_t kMaxContext = int64_t(1) << 26;       // 64M tokens: far above any real model's context
constexpr uint64_t kMaxKeptArray = 4096;                // numeric arrays longer than this are tokenizer data

size_t scalar_size(uint32_t type) {
    switch (type) {
        case T_UINT8: case T_INT8: case T_BOOL: return 1;
        case T_UINT16: case T_INT16: return 2;
        case T_UINT32: case T_INT32: case T_FLOAT32: return 4;
        case T_UINT64: case T_INT64: case T_FLOAT64: return 8;
        default: return 0;
    }
}

[[noreturn]] void fail(const std::string & path, const std::string & why) {
    throw Error(ErrorCode::ModelLoad, "invalid GGUF file '" + path + "': " + why);
}

bool is_integer(uint32_t type) {
    switch (type) {
        case T_UINT8: case T_INT8: case T_UINT16: case T_INT16: case T_UINT32: case T_INT32:
        case T_UINT64: case T_INT64: case T_BOOL: return true;
        default: return false;
    }
}

bool is_float(uint32_t type) { return type == T_FLOAT32 || type == T_FLOAT64; }

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// One metadata value. Numbers are kept for scalars and for short arrays (per-layer values).
struct Value {
    uint32_t type = 0;            // T_ARRAY for arrays
    uint32_t elem = 0;            // an array's element type
    uint64_t count = 1;           // an array's length
    std::vector<int64_t> ints;    // an integer scalar, or a short integer array (UINT64 saturates at INT64_MAX)
    std::vector<double> floats;   // a float scalar, or a short float array
    std::string str;
};

class Metadata {
public:
    std::unordered_map<std::string, Value> values;

    const Value * find(const std::string & key) const {
        auto it = values.find(key);
        return it == values.end() ? nullptr : &it->second;
    }
    const int64_t * integer(const std::string & key) const {
        const Value * v = find(key);
        return v && v->type != T_ARRAY && !v->ints.empty() ? &v->ints[0] : nullptr;
    }
    const std::string * string(const std::string & key) const {
        const Value * v = find(key);
        return v && v->type == T_STRING ? &v->str : nullptr;
    }
};

// A per-layer hyperparameter as llama.cpp's get_key_or_arr reads it: one scalar for every layer, or an
// array with one value per layer.
struct PerLayer {
    std::string key;
    bool array = false;
    std::vector<int64_t> values;   // empty: absent (or not an integer, which llama.cpp refuses itself)

    bool present() const { return !values.empty(); }
    int64_t at(size_t layer) const { return array ? values[layer] : values[0]; }
    std::string label(size_t layer) const { return array ? key + "[" + std::to_string(layer) + "]" : key; }
};

struct FileCloser { void operator()(FILE * f) const { std::fclose(f); } };

// Sequential reader that never reads past the end of the file.
class Reader {
public:
    Reader(const std::string & path, FILE * f, uint64_t size) : path_(path), f_(f), size_(size) {}

    uint64_t offset() const { return offset_; }
    uint64_t remaining() const { return size_ - offset_; }

    void read(void * dst, uint64_t n, const char * what) {
        if (n > remaining()) fail(path_, std::string("truncated while reading ") + what);
        if (n && std::fread(dst, 1, n, f_) != n) fail(path_, std::string("read error at ") + what);
        offset_ += n;
    }
    template <typename T> T get(const char * what) { T v; read(&v, sizeof v, what); return v; }

    void skip(uint64_t n, const char * what) {
        if (n > remaining()) fail(path_, std::string("truncated while reading ") + what);
        if (std::fseek(f_, static_cast<long>(n), SEEK_CUR) != 0) fail(path_, "seek failed");
        offset_ += n;
    }

    std::string string(const char * what) {
        uint64_t len = get<uint64_t>(what);
        if (len > remaining()) fail(path_, std::string("corrupt string length in ") + what);
        std::string s(len, '\0');
        read(s.data(), len, what);
        return s;
    }

private:
    std::string path_;
    FILE * f_;
    uint64_t size_;
    uint64_t offset_ = 0;
};

int64_t read_integer(Reader & r, uint32_t type) {
    switch (type) {
        case T_UINT8: case T_BOOL: return r.get<uint8_t>("value");
        case T_INT8:   return r.get<int8_t>("value");
        case T_UINT16: return r.get<uint16_t>("value");
        case T_INT16:  return r.get<int16_t>("value");
        case T_UINT32: return r.get<uint32_t>("value");
        case T_INT32:  return r.get<int32_t>("value");
        case T_INT64:  return r.get<int64_t>("value");
        default: {
            const uint64_t v = r.get<uint64_t>("value");
            return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
        }
    }
}

double read_float(Reader & r, uint32_t type) {
    return type == T_FLOAT32 ? static_cast<double>(r.get<float>("value")) : r.get<double>("value");
}

// Reads one key's value, keeping what the checks below need.
Value read_value(const std::string & path, Reader & r, const std::string & key, uint32_t type) {
    Value v;
    v.type = type;
    if (type == T_STRING) {
        v.str = r.string(key.c_str());
    } else if (is_integer(type)) {
        v.ints.push_back(read_integer(r, type));
    } else if (is_float(type)) {
        v.floats.push_back(read_float(r, type));
    } else if (type == T_ARRAY) {
        v.elem = r.get<uint32_t>("array type");
        v.count = r.get<uint64_t>("array length");
        if (v.elem == T_STRING) {
            if (v.count > r.remaining() / 8) fail(path, "corrupt array length for key '" + key + "'");
            const bool vocabulary = key == "tokenizer.ggml.tokens";
            std::unordered_set<std::string> seen;
            for (uint64_t j = 0; j < v.count; ++j) {
                std::string s = r.string(key.c_str());
                // llama.cpp asserts that token strings are unique.
                if (vocabulary && !seen.insert(std::move(s)).second) fail(path, "duplicate token in the vocabulary");
            }
        } else {
            const size_t es = scalar_size(v.elem);
            if (es == 0) fail(path, "unsupported array element type for key '" + key + "'");
            if (v.count > r.remaining() / es) fail(path, "corrupt array length for key '" + key + "'");
            if (v.count <= kMaxKeptArray && is_integer(v.elem)) {
                for (uint64_t j = 0; j < v.count; ++j) v.ints.push_back(read_integer(r, v.elem));
            } else if (v.count <= kMaxKeptArray && is_float(v.elem)) {
                for (uint64_t j = 0; j < v.count; ++j) v.floats.push_back(read_float(r, v.elem));
            } else {
                r.skip(v.count * es, key.c_str());
            }
        }
    } else {
        fail(path, "corrupt value type " + std::to_string(type) + " for key '" + key + "'");
    }
    return v;
}

// --- hyperparameters ---------------------------------------------------------------------------------------------
//
// Mirrors what llama.cpp's hyperparameter and vocabulary loading (build 0c1e570) and the ggml ops of its
// graphs assume without checking, or check with GGML_ASSERT, which aborts the process: in an otherwise
// well-formed file, these values pass the load and kill the process at the first decode.

// What llama.cpp and ggml need of these float hyperparameters: finite, and >= 0 or > 0.
struct FloatRule {
    const char * name;   // after "<arch>."
    bool zero_ok;        // >= 0 rather than > 0
};
constexpr FloatRule kFloatRules[] = {
    {"attention.layer_norm_rms_epsilon", true},   // ggml_rms_norm: GGML_ASSERT(eps >= 0)
    {"attention.layer_norm_epsilon", true},       // ggml_norm: GGML_ASSERT(eps >= 0)
    {"rope.freq_base", false},
    {"rope.freq_base_swa", false},
    {"rope.scaling.factor", true},                // 0 means "not set" to llama.cpp
    {"rope.scale_linear", true},
    {"rope.scaling.attn_factor", false},
};

class HyperparameterCheck {
public:
    HyperparameterCheck(const std::string & path, const Metadata & meta, const std::string & arch, int64_t capacity)
        : path_(path), meta_(meta), arch_(arch), prefix_(arch + "."), traits_(architecture_traits(arch)), capacity_(capacity) {}

    // The shapes the checked hyperparameters give the tensors, where known; unknown when a value they depend on
    // is missing (llama.cpp then reports that itself) or the architecture's shapes are not modelled here.
    struct Shapes {
        std::optional<AttentionDims> attention;   // for kTraitStandardAttention architectures
        std::optional<LlamaDims> llama;           // for the llama architecture
    };

    // Throws on the first bad value.
    Shapes run() {
        check_layers_and_experts();
        check_floats();
        check_context();
        check_attention();
        check_vocabulary();
        Shapes shapes;
        shapes.attention = attention_;
        if (arch_ == "llama") shapes.llama = check_llama();
        return shapes;
    }

private:
    const std::string & path_;
    const Metadata & meta_;
    std::string arch_, prefix_;
    unsigned traits_;
    int64_t capacity_;   // the most values one tensor of the file holds; 0 = the file has no tensors
    int64_t n_layer_ = 0, n_embd_ = 0, head_k_ = 0, head_v_ = 0, n_rot_ = 0, n_vocab_ = 0;
    PerLayer heads_, heads_kv_, ff_;
    std::optional<AttentionDims> attention_;

    std::string key(const char * name) const { return prefix_ + name; }
    const int64_t * integer(const char * name) const { return meta_.integer(key(name)); }

    [[noreturn]] void bad(const std::string & what, const std::string & value, const std::string & why) const {
        fail(path_, what + " " + value + " " + why);
    }
    [[noreturn]] void bad(const std::string & what, int64_t value, const std::string & why) const {
        bad(what, std::to_string(value), why);
    }

    // A count llama.cpp keeps in 32 bits. It is a dimension of some tensor, so it is also bounded by the
    // largest tensor in the file (when the file has tensors: a vocabulary-only file has none).
    void check_count(const std::string & what, int64_t v, int64_t min) const {
        if (v < min || v > kMaxU32) bad(what, v, "is out of range [" + std::to_string(min) + ", " + std::to_string(kMaxU32) + "]");
        if (capacity_ > 0 && v > capacity_)
            bad(what, v, "is larger than any tensor in the file (the largest holds " + std::to_string(capacity_) + " values)");
    }

    // `a` times `b`, a size llama.cpp computes in 32-bit arithmetic and allocates.
    void check_product(const std::string & what, int64_t a, const std::string & b_what, int64_t b) const {
        int64_t p = 0;
        if (__builtin_mul_overflow(a, b, &p) || p > kMaxU32)
            bad(what, a, "times " + b_what + " " + std::to_string(b) + " overflows 32-bit arithmetic");
        if (capacity_ > 0 && p > capacity_)
            bad(what, a, "times " + b_what + " " + std::to_string(b) + " is " + std::to_string(p) +
                             ", more values than any tensor in the file holds (" + std::to_string(capacity_) + ")");
    }

    PerLayer per_layer(const char * name) const {
        PerLayer p;
        p.key = key(name);
        const Value * v = meta_.find(p.key);
        if (!v) return p;
        p.array = v->type == T_ARRAY;
        if (p.array && !is_integer(v->elem)) return p;   // llama.cpp refuses the type itself
        if (p.array && v->count != static_cast<uint64_t>(n_layer_))
            bad(p.key, "has " + std::to_string(v->count) + " entries", "but block_count is " + std::to_string(n_layer_));
        p.values = v->ints;
        for (size_t i = 0; i < p.values.size(); ++i) check_count(p.label(i), p.values[i], 0);
        return p;
    }

    void check_layers_and_experts() {
        const int64_t * layers = integer("block_count");
        if (layers && (*layers <= 0 || *layers > kMaxLayers))
            bad(key("block_count"), *layers, "is out of range [1, " + std::to_string(kMaxLayers) + "]");
        n_layer_ = layers ? *layers : 0;
        const int64_t * nextn = integer("nextn_predict_layers");
        if (nextn && (*nextn < 0 || *nextn > n_layer_)) bad(key("nextn_predict_layers"), *nextn, "is out of range");

        const int64_t * experts_p = integer("expert_count");
        const int64_t experts = experts_p ? *experts_p : 0;
        if (experts < 0 || experts > kMaxExperts) bad(key("expert_count"), experts, "is out of range [0, 1024]");
        const PerLayer used = per_layer("expert_used_count");
        int64_t used_max = 0;
        for (size_t i = 0; i < used.values.size(); ++i) {
            if (used.values[i] > experts) bad(used.label(i), used.values[i], "is more than expert_count " + std::to_string(experts));
            used_max = std::max(used_max, used.values[i]);
        }
        const int64_t * groups_p = integer("expert_group_count");
        const int64_t * groups_used_p = integer("expert_group_used_count");
        const int64_t groups = groups_p ? *groups_p : 0, groups_used = groups_used_p ? *groups_used_p : 0;
        if (experts > 0) {
            if (used_max == 0) fail(path_, key("expert_used_count") + " must be positive when there are experts");
            if (groups < 0 || groups >= experts) bad(key("expert_group_count"), groups, "is out of range");
            if (groups > 1 && (experts % groups != 0 || groups_used <= 0 || groups_used >= groups))
                fail(path_, "expert groups are inconsistent");
        } else if (groups != 0) {
            fail(path_, key("expert_group_count") + " without experts");
        }
        auto scaling = meta_.string(key("rope.scaling.type"));
        if (scaling) {
            static const char * known[] = {"none", "linear", "yarn", "longrope"};
            if (std::find(std::begin(known), std::end(known), *scaling) == std::end(known))
                fail(path_, "unknown rope.scaling.type '" + *scaling + "'");
        }
    }

    void check_floats() const {
        // No hyperparameter means anything as NaN; ggml turns it into NaN activations at best and into failed
        // assertions at worst. (Infinity can be meaningful: llama.cpp's default kda.gate_lower_bound is -inf.)
        for (const auto & [name, v] : meta_.values) {
            if (name.rfind(prefix_, 0) != 0) continue;
            for (size_t i = 0; i < v.floats.size(); ++i) {
                if (std::isnan(v.floats[i]))
                    bad(v.type == T_ARRAY ? name + "[" + std::to_string(i) + "]" : name, "nan", "is not a number");
            }
        }
        for (const FloatRule & rule : kFloatRules) {
            const Value * v = meta_.find(key(rule.name));
            if (!v || v->type == T_ARRAY || v->floats.empty()) continue;
            const double x = v->floats[0];
            if (!std::isfinite(x)) bad(key(rule.name), number(x), "is not a finite number");
            if (rule.zero_ok ? x < 0 : x <= 0) bad(key(rule.name), number(x), rule.zero_ok ? "is negative" : "must be positive");
        }
    }

    void check_context() const {
        const int64_t * ctx = integer("context_length");
        if (ctx && (*ctx < 1 || *ctx > kMaxContext))
            bad(key("context_length"), *ctx, "is out of range [1, " + std::to_string(kMaxContext) + "]");
        const int64_t * orig = integer("rope.scaling.original_context_length");
        if (orig && (*orig < 0 || *orig > kMaxContext))
            bad(key("rope.scaling.original_context_length"), *orig, "is out of range [0, " + std::to_string(kMaxContext) + "]");
    }

    // Head counts and sizes: every product llama.cpp forms from them must fit in 32 bits and in the file.
    void check_attention() {
        const int64_t * embd = integer("embedding_length");
        if (embd) check_count(key("embedding_length"), *embd, 1);
        n_embd_ = embd ? *embd : 0;
        for (const char * name : {"embedding_length_out", "expert_feed_forward_length", "expert_shared_feed_forward_length"}) {
            if (const int64_t * v = integer(name)) check_count(key(name), *v, 0);
        }
        heads_ = per_layer("attention.head_count");
        heads_kv_ = per_layer("attention.head_count_kv");
        if (!heads_kv_.present()) heads_kv_ = heads_;   // llama.cpp: n_head_kv defaults to n_head
        ff_ = per_layer("feed_forward_length");
        if (!(traits_ & kTraitPerLayerHeadCounts)) {
            for (const PerLayer * p : {&heads_, &heads_kv_}) {
                for (size_t il = 0; il < p->values.size(); ++il) {
                    if (p->values[il] != p->values[0])
                        bad(p->label(il), p->values[il], "differs from layer 0 (" + std::to_string(p->values[0]) + "): " + arch_ +
                                                             " builds every layer with layer 0's head counts");
                    if (p->values[il] == 0 && (traits_ & kTraitStandardAttention))
                        bad(p->label(il), 0, "must be positive: " + arch_ + " has attention in every layer");
                }
            }
        }
        if (!heads_.present() || heads_.at(0) == 0) return;   // no attention (recurrent models)

        // Head sizes as llama.cpp derives them: from layer 0's head count unless given.
        const int64_t n_head = heads_.at(0);
        const int64_t * key_length = integer("attention.key_length");
        const int64_t * value_length = integer("attention.value_length");
        if (key_length) check_count(key("attention.key_length"), *key_length, 1);
        if (value_length) check_count(key("attention.value_length"), *value_length, 1);
        head_k_ = key_length ? *key_length : n_embd_ / n_head;
        head_v_ = value_length ? *value_length : n_embd_ / n_head;

        const int64_t * rot = integer("rope.dimension_count");
        n_rot_ = rot ? *rot : head_k_;
        const std::string from = key_length ? key("attention.key_length")
                                            : key("embedding_length") + " " + std::to_string(n_embd_) + " / " +
                                                  heads_.label(0) + " " + std::to_string(n_head);
        check_head_sizes("", n_rot_, head_k_, head_v_, from);
        // Layers with sliding-window attention may have their own sizes (default: the full ones).
        const int64_t * key_length_swa = integer("attention.key_length_swa");
        const int64_t * value_length_swa = integer("attention.value_length_swa");
        const int64_t * rot_swa = integer("rope.dimension_count_swa");
        if (key_length_swa) check_count(key("attention.key_length_swa"), *key_length_swa, 1);
        if (value_length_swa) check_count(key("attention.value_length_swa"), *value_length_swa, 1);
        if (key_length_swa || value_length_swa || rot_swa) {
            const int64_t k = key_length_swa ? *key_length_swa : head_k_, v = value_length_swa ? *value_length_swa : head_v_;
            check_head_sizes("_swa", rot_swa ? *rot_swa : n_rot_, k, v, key_length_swa ? key("attention.key_length_swa") : from);
        }
        // Multi-head latent attention: a key head is its rotated part plus at least one more value.
        const int64_t * k_mla = integer("attention.key_length_mla");
        const int64_t * v_mla = integer("attention.value_length_mla");
        if (k_mla) check_count(key("attention.key_length_mla"), *k_mla, 0);
        if (v_mla) check_count(key("attention.value_length_mla"), *v_mla, 0);
        if ((k_mla && *k_mla > 0) != (v_mla && *v_mla > 0))
            fail(path_, key("attention.key_length_mla") + " and " + key("attention.value_length_mla") + " must be given together");
        if (k_mla && *k_mla > 0 && n_rot_ >= *k_mla)
            bad(key("rope.dimension_count"), n_rot_,
                "leaves nothing of the latent key head size " + std::to_string(*k_mla) + " unrotated");

        for (int64_t il = 0; il < std::max<int64_t>(n_layer_, 1); ++il) {
            if (il > 0 && !heads_.array && !heads_kv_.array) break;   // the same in every layer
            const int64_t h = heads_.at(il), kv = heads_kv_.at(il);
            if (kv > h) bad(heads_kv_.label(il), kv, "is more than " + heads_.label(il) + " " + std::to_string(h));
            if (kv > 0 && h % kv != 0) bad(heads_kv_.label(il), kv, "does not divide " + heads_.label(il) + " " + std::to_string(h));
            check_product(heads_.label(il), h, "the head size", std::max(head_k_, head_v_));
            check_product(heads_kv_.label(il), kv, "the head size", std::max(head_k_, head_v_));
        }
        if (key_length_swa) check_product(heads_.label(0), n_head, key("attention.key_length_swa"), *key_length_swa);
        if (value_length_swa) check_product(heads_.label(0), n_head, key("attention.value_length_swa"), *value_length_swa);

        if (traits_ & kTraitStandardAttention) {
            AttentionDims a;
            for (int64_t il = 0; il < n_layer_; ++il) {
                a.n_head.push_back(heads_.at(il));
                a.n_head_kv.push_back(heads_kv_.at(il));
            }
            a.head_k = head_k_;
            a.head_v = head_v_;
            const bool swa = traits_ & kTraitSlidingWindow;
            a.head_k_swa = swa && key_length_swa ? *key_length_swa : head_k_;
            a.head_v_swa = swa && value_length_swa ? *value_length_swa : head_v_;
            attention_ = a;
        }
    }

    // The rope and head sizes of full (suffix "") or sliding-window ("_swa") attention layers.
    void check_head_sizes(const char * suffix, int64_t n_rot, int64_t head_k, int64_t head_v, const std::string & from) const {
        const std::string rot_key = key("rope.dimension_count") + suffix;
        if ((traits_ & kTraitRopeWholeHead) && n_rot != head_k)
            fail(path_, "invalid n_rot: " + rot_key + " " + std::to_string(n_rot) + " differs from the head size " +
                            std::to_string(head_k) + " (" + from + "), and " + arch_ + " rotates whole heads");
        // ggml_rope rotates pairs of values within a head: GGML_ASSERT(n_dims <= ne0 && n_dims % 2 == 0).
        check_count(rot_key, n_rot, 0);
        if (n_rot > head_k) bad(rot_key, n_rot, "is larger than the head size " + std::to_string(head_k));
        if (n_rot % 2 != 0) bad(rot_key, n_rot, "is odd (rope rotates pairs of values)");
        if (n_rot == 0 && !(traits_ & kTraitNoRope)) bad(rot_key, n_rot, "leaves rope nothing to rotate");
        if ((traits_ & kTraitValueHeadIsKeyHead) && head_v != head_k)
            bad(key("attention.value_length") + suffix, head_v,
                "differs from the key length " + std::to_string(head_k) + " (" + arch_ + " needs them equal)");
    }

    void check_vocabulary() {
        const Value * tokens = meta_.find("tokenizer.ggml.tokens");
        const bool have_tokens = tokens && tokens->type == T_ARRAY && tokens->elem == T_STRING;
        if (have_tokens) n_vocab_ = static_cast<int64_t>(tokens->count);
        const int64_t * size = integer("vocab_size");
        if (size) {
            if (have_tokens && *size != n_vocab_)
                bad(key("vocab_size"), *size, "differs from the " + std::to_string(n_vocab_) + " entries of tokenizer.ggml.tokens");
            check_count(key("vocab_size"), *size, 0);
            // Without a token list llama.cpp makes vocab_size placeholder tokens: each needs an embedding row.
            if (capacity_ > 0 && n_embd_ > 0 && *size > capacity_ / n_embd_)
                bad(key("vocab_size"), *size, "is more tokens than the file holds embeddings for");
            if (!have_tokens) n_vocab_ = *size;
        }
        const int64_t * types = meta_.integer("tokenizer.ggml.token_type_count");
        if (types) check_count("tokenizer.ggml.token_type_count", *types, 0);
    }

    // llama.cpp creates the llama architecture's tensors with layer 0's sizes for every layer.
    std::optional<LlamaDims> check_llama() const {
        if (!heads_.present() || n_embd_ == 0) return std::nullopt;   // llama.cpp reports missing keys itself
        for (const PerLayer * p : {&heads_, &heads_kv_, &ff_}) {
            for (size_t il = 0; il < p->values.size(); ++il) {
                if (p->values[il] == 0) bad(p->label(il), 0, "must be positive for the llama architecture");
                if (p->values[il] != p->values[0])
                    bad(p->label(il), p->values[il], "differs from layer 0 (" + std::to_string(p->values[0]) +
                                                         "): the llama architecture needs the same value in every layer");
            }
        }
        if (!integer("attention.key_length") && n_embd_ % heads_.at(0) != 0)
            bad(heads_.label(0), heads_.at(0), "does not divide " + key("embedding_length") + " " + std::to_string(n_embd_));
        if (!ff_.present()) return std::nullopt;
        LlamaDims dims;
        dims.n_embd = n_embd_;
        dims.n_vocab = n_vocab_;
        dims.n_layer = n_layer_;
        dims.n_head = heads_.at(0);
        dims.n_head_kv = heads_kv_.at(0);
        dims.head_k = head_k_;
        dims.head_v = head_v_;
        dims.n_rot = n_rot_;
        dims.n_ff = ff_.at(0);
        const int64_t * experts = integer("expert_count");
        dims.n_expert = experts ? *experts : 0;
        return dims;
    }
};

}  // namespace

void check_gguf_file(const std::string & path) {
    struct stat st {};
    if (path.empty()) throw Error(ErrorCode::ModelLoad, "no model path given");
    if (::stat(path.c_str(), &st) != 0) throw Error(ErrorCode::ModelLoad, "model file not found: '" + path + "'");
    if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::ModelLoad, "model path is a directory, not a GGUF file: '" + path + "'");
    if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::ModelLoad, "model path is not a regular file: '" + path + "'");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size == 0) throw Error(ErrorCode::ModelLoad, "model file is empty: '" + path + "'");

    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) throw Error(ErrorCode::ModelLoad, "cannot open model file '" + path + "': " + std::strerror(errno));
    Reader r(path, f.get(), size);

    char magic[4] = {};
    if (size < 4) fail(path, "file too small to be GGUF");
    r.read(magic, 4, "magic");
    if (std::memcmp(magic, "GGUF", 4) != 0) fail(path, "not a GGUF file (bad magic)");
    const uint32_t version = r.get<uint32_t>("version");
    if (version < 2 || version > 3) fail(path, "unsupported GGUF version " + std::to_string(version));
    const uint64_t n_tensors = r.get<uint64_t>("tensor count");
    const uint64_t n_kv = r.get<uint64_t>("key/value count");
    // Each entry takes at least a few bytes, so the counts are bounded by the file size.
    if (n_kv > r.remaining() / 12) fail(path, "corrupt key/value count " + std::to_string(n_kv));
    if (n_tensors > r.remaining() / 24) fail(path, "corrupt tensor count " + std::to_string(n_tensors));

    uint64_t alignment = 32;
    Metadata meta;
    for (uint64_t i = 0; i < n_kv; ++i) {
        std::string key = r.string("key");
        const uint32_t type = r.get<uint32_t>("value type");
        if (type >= T_COUNT) fail(path, "corrupt value type " + std::to_string(type) + " for key '" + key + "'");
        Value v = read_value(path, r, key, type);
        if (key == "general.alignment" && is_integer(type)) {
            const int64_t a = v.ints[0];
            if (a <= 0 || a > (1 << 20) || (a & (a - 1)) != 0) fail(path, "general.alignment is not a power of two");
            alignment = static_cast<uint64_t>(a);
        }
        meta.values[std::move(key)] = std::move(v);
    }

    std::vector<TensorDecl> tensors(n_tensors);
    std::vector<uint64_t> offsets(n_tensors), sizes(n_tensors);
    int64_t largest = 0;   // values in the largest tensor: a bound for every count in the metadata
    for (uint64_t i = 0; i < n_tensors; ++i) {
        TensorDecl & t = tensors[i];
        t.name = r.string("tensor name");
        t.n_dims = r.get<uint32_t>("tensor dims");
        if (t.n_dims == 0 || t.n_dims > GGML_MAX_DIMS)
            fail(path, "tensor '" + t.name + "' has " + std::to_string(t.n_dims) + " dimensions");
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            t.ne[d] = r.get<int64_t>("tensor shape");
            if (t.ne[d] <= 0 || static_cast<uint64_t>(t.ne[d]) > size * 64 || n_elements > size * 64 / static_cast<uint64_t>(t.ne[d]))
                fail(path, "tensor '" + t.name + "' has a corrupt shape");
            n_elements *= static_cast<uint64_t>(t.ne[d]);
        }
        const uint32_t type = r.get<uint32_t>("tensor type");
        if (type >= GGML_TYPE_COUNT) fail(path, "tensor '" + t.name + "' has unknown type " + std::to_string(type));
        t.type = static_cast<ggml_type>(type);
        const int64_t block = ggml_blck_size(t.type);
        const size_t type_size = ggml_type_size(t.type);
        if (block <= 0 || type_size == 0) fail(path, "tensor '" + t.name + "' has unsupported type " + std::to_string(type));
        if (t.ne[0] % block != 0) fail(path, "tensor '" + t.name + "' row size is not a multiple of its block size");
        offsets[i] = r.get<uint64_t>("tensor offset");
        if (offsets[i] % alignment != 0) fail(path, "tensor '" + t.name + "' has a misaligned data offset");
        sizes[i] = n_elements / static_cast<uint64_t>(block) * type_size;
        largest = std::max(largest, static_cast<int64_t>(n_elements));
    }

    const uint64_t data_start = (r.offset() + alignment - 1) / alignment * alignment;
    if (n_tensors > 0 && data_start > size) fail(path, "truncated: no tensor data");
    const uint64_t data_size = size - std::min(size, data_start);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        if (offsets[i] > data_size || sizes[i] > data_size - offsets[i])
            fail(path, "truncated: tensor data extends past the end of the file (" + std::to_string(size) + " bytes)");
    }

    HyperparameterCheck::Shapes shapes;
    if (const std::string * arch = meta.string("general.architecture"))   // else llama.cpp reports it itself
        shapes = HyperparameterCheck(path, meta, *arch, largest).run();
    std::string problem = tensor_type_problem(tensors);
    if (problem.empty() && shapes.llama) problem = llama_shape_problem(tensors, *shapes.llama);
    if (problem.empty() && shapes.attention) problem = attention_shape_problem(tensors, *shapes.attention);
    if (!problem.empty()) fail(path, problem);
}

}  // namespace ohai
