// check_gguf_file: bad files give ohai::Error(ModelLoad) with a reason, never a crash.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "check.h"
#include "ggml.h"
#include "gguf_check.h"
#include "gguf_roles.h"
#include "ohai/error.h"

static std::string write_file(const std::string & name, const std::vector<uint8_t> & bytes) {
    const std::string path = std::string(P_tmpdir) + "/ohai_test_" + name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    return path;
}

static std::string error_of(const std::string & path) {
    try {
        ohai::check_gguf_file(path);
    } catch (const ohai::Error & e) {
        CHECK(e.code() == ohai::ErrorCode::ModelLoad);
        return e.what();
    }
    return "";
}

template <typename T> static void put(std::vector<uint8_t> & b, T v) {
    const auto * p = reinterpret_cast<const uint8_t *>(&v);
    b.insert(b.end(), p, p + sizeof v);
}

static std::vector<uint8_t> header(uint64_t n_tensors, uint64_t n_kv) {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, 3);
    put<uint64_t>(b, n_tensors);
    put<uint64_t>(b, n_kv);
    return b;
}

static bool has(const std::string & s, const std::string & part) {
    if (s.find(part) != std::string::npos) return true;
    std::fprintf(stderr, "  expected '%s' in: %s\n", part.c_str(), s.c_str());
    return false;
}

// A well-formed small llama-architecture GGUF (zero weights), to change one thing at a time.
struct TinyLlama {
    struct Kv { std::string key; std::vector<uint8_t> value; };
    struct Tensor { std::string name; std::vector<int64_t> ne; ggml_type type; };
    std::vector<Kv> kv;
    std::vector<Tensor> tensors;

    TinyLlama() {
        str("general.architecture", "llama");
        u32("llama.block_count", 1);
        u32("llama.context_length", 256);
        u32("llama.embedding_length", 64);
        u32("llama.feed_forward_length", 128);
        u32("llama.attention.head_count", 4);
        u32("llama.attention.head_count_kv", 2);
        f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        f32("llama.rope.freq_base", 10000.0f);
        std::vector<uint8_t> tokens;
        put<uint32_t>(tokens, 8);   // of strings
        put<uint64_t>(tokens, 8);
        for (char c = 'a'; c < 'a' + 8; ++c) { put<uint64_t>(tokens, 1); tokens.push_back(uint8_t(c)); }
        raw("tokenizer.ggml.tokens", 9, tokens);
        tensor("token_embd.weight", {64, 8});
        tensor("output_norm.weight", {64});
        tensor("blk.0.attn_norm.weight", {64});
        tensor("blk.0.attn_q.weight", {64, 64});
        tensor("blk.0.attn_k.weight", {64, 32});
        tensor("blk.0.attn_v.weight", {64, 32});
        tensor("blk.0.attn_output.weight", {64, 64});
        tensor("blk.0.ffn_norm.weight", {64});
        tensor("blk.0.ffn_gate.weight", {64, 128});
        tensor("blk.0.ffn_up.weight", {64, 128});
        tensor("blk.0.ffn_down.weight", {128, 64});
    }

    void raw(const std::string & key, uint32_t type, const std::vector<uint8_t> & payload) {
        std::vector<uint8_t> v;
        put<uint32_t>(v, type);
        v.insert(v.end(), payload.begin(), payload.end());
        for (Kv & e : kv) if (e.key == key) { e.value = v; return; }
        kv.push_back({key, v});
    }
    void str(const std::string & key, const std::string & s) {
        std::vector<uint8_t> v;
        put<uint64_t>(v, s.size());
        v.insert(v.end(), s.begin(), s.end());
        raw(key, 8, v);
    }
    void u32(const std::string & key, uint32_t x) { std::vector<uint8_t> v; put(v, x); raw(key, 4, v); }
    void f32(const std::string & key, float x) { std::vector<uint8_t> v; put(v, x); raw(key, 6, v); }
    void u32_array(const std::string & key, const std::vector<uint32_t> & xs) {
        std::vector<uint8_t> v;
        put<uint32_t>(v, 4);
        put<uint64_t>(v, xs.size());
        for (uint32_t x : xs) put(v, x);
        raw(key, 9, v);
    }
    void tensor(const std::string & name, std::vector<int64_t> ne, ggml_type type = GGML_TYPE_F32) {
        for (Tensor & t : tensors) if (t.name == name) { t.ne = ne; t.type = type; return; }
        tensors.push_back({name, ne, type});
    }
    void retype(const std::string & name, ggml_type type) {
        for (Tensor & t : tensors) if (t.name == name) t.type = type;
    }

    std::string error(const std::string & name) const {
        std::vector<uint8_t> b = header(tensors.size(), kv.size());
        for (const Kv & e : kv) {
            put<uint64_t>(b, e.key.size());
            b.insert(b.end(), e.key.begin(), e.key.end());
            b.insert(b.end(), e.value.begin(), e.value.end());
        }
        uint64_t offset = 0;
        for (const Tensor & t : tensors) {
            put<uint64_t>(b, t.name.size());
            b.insert(b.end(), t.name.begin(), t.name.end());
            put<uint32_t>(b, t.ne.size());
            int64_t n = 1;
            for (int64_t d : t.ne) { put<int64_t>(b, d); n *= d; }
            put<uint32_t>(b, t.type);
            put<uint64_t>(b, offset);
            offset += (n / ggml_blck_size(t.type) * ggml_type_size(t.type) + 31) / 32 * 32;
        }
        b.resize((b.size() + 31) / 32 * 32 + offset, 0);
        return error_of(write_file(name + ".gguf", b));
    }
};

static void test_hyperparameter_values() {
    CHECK(TinyLlama().error("llama_ok").empty());

    const float bad_floats[] = {NAN, INFINITY, -INFINITY, -1.0f};
    for (float x : bad_floats) {
        TinyLlama eps;
        eps.f32("llama.attention.layer_norm_rms_epsilon", x);
        CHECK(has(eps.error("eps"), "llama.attention.layer_norm_rms_epsilon " + std::string(std::isnan(x) ? "nan" : "")));
        TinyLlama base;
        base.f32("llama.rope.freq_base", x);
        CHECK(has(base.error("freq_base"), "llama.rope.freq_base"));
    }
    TinyLlama zero_base;
    zero_base.f32("llama.rope.freq_base", 0.0f);
    CHECK(has(zero_base.error("freq_base0"), "llama.rope.freq_base 0 must be positive"));
    TinyLlama scale;
    scale.f32("llama.rope.scaling.factor", 0.0f);   // 0 = not set, to llama.cpp
    CHECK(scale.error("scale0").empty());
    TinyLlama other_float;
    other_float.f32("llama.some_future_factor", NAN);
    CHECK(has(other_float.error("other_float"), "llama.some_future_factor nan is not a number"));
    other_float.f32("llama.some_future_factor", -INFINITY);   // infinity can mean something (a lower bound)
    CHECK(other_float.error("other_inf").empty());

    // 16 * (2 + 2^31) wraps to 32, the right K/V width, in 32-bit arithmetic.
    TinyLlama wrap;
    wrap.u32("llama.attention.head_count_kv", 2 + (1u << 31));
    CHECK(has(wrap.error("wrap"), "llama.attention.head_count_kv 2147483650"));
    TinyLlama key_wrap;
    key_wrap.u32("llama.attention.key_length", 16 + (1u << 28));
    CHECK(has(key_wrap.error("key_wrap"), "llama.attention.key_length 268435472"));
    TinyLlama not_dividing;
    not_dividing.u32("llama.attention.head_count_kv", 3);
    CHECK(has(not_dividing.error("kv3"), "head_count_kv 3 does not divide llama.attention.head_count 4"));
    TinyLlama no_heads;
    no_heads.u32("llama.attention.head_count", 0);
    CHECK(has(no_heads.error("heads0"), "llama.attention.head_count 0 must be positive"));
    TinyLlama rot;
    rot.u32("llama.rope.dimension_count", 15);
    CHECK(has(rot.error("rot"), "invalid n_rot"));
    TinyLlama value_length;
    value_length.u32("llama.attention.value_length", 32);
    CHECK(has(value_length.error("value_length"), "llama.attention.value_length 32 differs from the key length 16"));
    TinyLlama ff;
    ff.u32("llama.feed_forward_length", 0);
    CHECK(has(ff.error("ff0"), "llama.feed_forward_length 0"));
    TinyLlama ctx;
    ctx.u32("llama.context_length", 0);
    CHECK(has(ctx.error("ctx0"), "llama.context_length 0 is out of range"));
    TinyLlama vocab;
    vocab.u32("llama.vocab_size", 9);
    CHECK(has(vocab.error("vocab"), "llama.vocab_size 9 differs from the 8 entries"));
    TinyLlama huge;
    huge.u32("llama.embedding_length", 4000000);
    CHECK(has(huge.error("embd"), "llama.embedding_length 4000000 is larger than any tensor in the file"));

    // Per-layer arrays: every entry counts, not only the largest.
    TinyLlama arr;
    arr.u32_array("llama.attention.head_count_kv", {2});
    CHECK(arr.error("kv_arr").empty());
    arr.u32_array("llama.attention.head_count_kv", {0});
    CHECK(has(arr.error("kv_arr0"), "llama.attention.head_count_kv[0] 0 must be positive"));
    arr.u32_array("llama.attention.head_count_kv", {2, 2});
    CHECK(has(arr.error("kv_arr2"), "has 2 entries"));
}

static void test_tensor_roles() {
    TinyLlama norm;
    norm.retype("blk.0.attn_norm.weight", GGML_TYPE_I32);
    CHECK(has(norm.error("norm_i32"), "tensor 'blk.0.attn_norm.weight' has type i32, but norm"));
    TinyLlama matrix;
    matrix.retype("blk.0.attn_q.weight", GGML_TYPE_I16);
    CHECK(has(matrix.error("q_i16"), "tensor 'blk.0.attn_q.weight' has type i16, which ggml cannot multiply"));
    TinyLlama q8k;
    q8k.tensor("blk.0.ffn_up.weight", {256, 128}, GGML_TYPE_Q8_K);
    CHECK(has(q8k.error("q8k"), "has type q8_K, which ggml cannot multiply"));
    TinyLlama embd;
    embd.retype("token_embd.weight", GGML_TYPE_I32);
    CHECK(has(embd.error("embd_i32"), "tensor 'token_embd.weight' has type i32, which ggml cannot look"));
    TinyLlama f16;
    f16.retype("blk.0.attn_q.weight", GGML_TYPE_F16);
    f16.retype("token_embd.weight", GGML_TYPE_Q8_0);
    CHECK(f16.error("f16").empty());
    TinyLlama shape;
    shape.tensor("blk.0.attn_k.weight", {64, 48});
    CHECK(has(shape.error("shape"), "tensor 'blk.0.attn_k.weight' has shape [64, 48] but the hyperparameters make it [64, 32]"));
    TinyLlama extra;   // a name llama.cpp does not know: left to llama.cpp
    extra.tensor("blk.0.something_new.weight", {7}, GGML_TYPE_I32);
    CHECK(extra.error("extra").empty());

    // The rules on their own: unknown names stay allowed, biases are elementwise.
    std::vector<ohai::TensorDecl> ts(1);
    ts[0].name = "blk.3.ffn_down.bias";
    ts[0].type = GGML_TYPE_F16;
    CHECK(has(ohai::tensor_type_problem(ts), "must be f32"));
    ts[0].name = "mystery";
    CHECK(ohai::tensor_type_problem(ts).empty());
}

int main() {
    CHECK(error_of("/nonexistent/model.gguf").find("not found") != std::string::npos);
    CHECK(error_of(P_tmpdir).find("directory") != std::string::npos);
    CHECK(error_of(write_file("empty.gguf", {})).find("empty") != std::string::npos);
    CHECK(error_of(write_file("magic.gguf", {'N', 'O', 'P', 'E', 0, 0, 0, 0})).find("bad magic") != std::string::npos);

    auto huge_kv = header(0, uint64_t(1) << 60);
    CHECK(error_of(write_file("kvcount.gguf", huge_kv)).find("key/value count") != std::string::npos);

    auto bad_string = header(0, 1);
    put<uint64_t>(bad_string, uint64_t(1) << 40);   // key length far past the end
    bad_string.resize(bad_string.size() + 64, 0);
    CHECK(error_of(write_file("string.gguf", bad_string)).find("corrupt string length") != std::string::npos);

    auto one_tensor = header(1, 0);
    put<uint64_t>(one_tensor, 1);
    one_tensor.push_back('w');
    put<uint32_t>(one_tensor, 2);         // 2 dims
    put<int64_t>(one_tensor, 32);
    put<int64_t>(one_tensor, 4);
    put<uint32_t>(one_tensor, 0);         // F32
    put<uint64_t>(one_tensor, 0);         // offset
    CHECK(error_of(write_file("truncated.gguf", one_tensor)).find("truncated") != std::string::npos);

    auto bad_type = one_tensor;
    bad_type[bad_type.size() - 12] = 200;  // tensor type byte
    CHECK(error_of(write_file("type.gguf", bad_type)).find("unknown type") != std::string::npos);

    auto ok = one_tensor;
    ok.resize((ok.size() + 31) / 32 * 32 + 32 * 4 * 4, 0);
    CHECK(error_of(write_file("ok.gguf", ok)).empty());

    test_hyperparameter_values();
    test_tensor_roles();
    return finish("test_gguf_check");
}
