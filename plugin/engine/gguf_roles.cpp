#include "gguf_roles.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "ggml-cpu.h"

namespace ohai {
namespace {

// How the graph uses a tensor; that decides which types ggml's CPU backend has kernels for.
enum class Role {
    Unknown,      // not a tensor llama.cpp knows: it reports those itself
    Elementwise,  // combined with F32 activations by add, mul, rope, ssm_conv, ...: F32 only
    Rows,         // rows looked up by index (ggml_get_rows)
    Embedding,    // rows looked up and then added to F32 activations: no I32
    Matmul,       // multiplied with F32 activations (ggml_mul_mat / ggml_mul_mat_id)
};

// The tensors llama.cpp knows, by name within a layer (after "blk.N."), grouped by the ggml op its
// LLM_TENSOR_INFOS table says uses them (src/llama-arch.cpp, build 0c1e570). Matrices (MUL_MAT, MUL_MAT_ID):
constexpr const char * kMatmulTensors[] = {
    "altup_correct_coef", "altup_predict_coef", "altup_proj", "altup_router", "altup_unembd_proj",
    "attn_compressor_gate", "attn_compressor_kv", "attn_conv_proj", "attn_gate", "attn_k", "attn_k_b", "attn_kv",
    "attn_kv_a_mqa", "attn_kv_b", "attn_output", "attn_output_a", "attn_output_b", "attn_q", "attn_q_a", "attn_q_b",
    "attn_qkv", "attn_v", "attn_v_b", "channel_mix_key", "channel_mix_receptance", "channel_mix_value", "cls",
    "cls.output", "conf_proj", "dec.attn_k", "dec.attn_o", "dec.attn_q", "dec.attn_v", "dec.cross_attn_k",
    "dec.cross_attn_o", "dec.cross_attn_q", "dec.cross_attn_v", "dec.ffn_down", "dec.ffn_gate", "dec.ffn_up",
    "dense_2", "dense_3", "enc.attn_k", "enc.attn_o", "enc.attn_q", "enc.attn_v", "enc.ffn_down", "enc.ffn_gate",
    "enc.ffn_up", "fc", "ffn_conv_proj", "ffn_down", "ffn_down_chexps", "ffn_down_exps", "ffn_down_shexp",
    "ffn_gate", "ffn_gate_chexps", "ffn_gate_exps", "ffn_gate_inp", "ffn_gate_inp_shexp", "ffn_gate_shexp",
    "ffn_gate_up_exps", "ffn_latent_down", "ffn_latent_up", "ffn_routed_down", "ffn_routed_up", "ffn_up",
    "ffn_up_chexps", "ffn_up_exps", "ffn_up_shexp", "hc_attn_down", "hc_attn_fn", "hc_attn_inject", "hc_attn_up",
    "hc_ffn_down", "hc_ffn_fn", "hc_ffn_inject", "hc_ffn_up", "indexer.attn_k", "indexer.attn_q_b",
    "indexer.k_proj", "indexer.proj", "indexer.q_proj", "indexer_compressor_gate", "indexer_compressor_kv",
    "inp_gate", "laurel_l", "laurel_r", "markov_w2", "nextn.eh_proj", "nextn.post_projection",
    "nextn.pre_projection", "nextn.shared_head_head", "output", "output_hc_down", "output_hc_fn", "output_hc_up",
    "per_layer_model_proj", "ple_key", "ple_value", "proj", "selector_hidden", "shortconv.in_proj",
    "shortconv.out_proj", "ssm_alpha", "ssm_ba", "ssm_beta", "ssm_dt", "ssm_f_a", "ssm_f_b", "ssm_g", "ssm_g_a",
    "ssm_g_b", "ssm_in", "ssm_out", "ssm_x", "time_mix_a1", "time_mix_a2", "time_mix_decay_w1", "time_mix_decay_w2",
    "time_mix_g1", "time_mix_g2", "time_mix_gate", "time_mix_key", "time_mix_output", "time_mix_receptance",
    "time_mix_v1", "time_mix_v2", "time_mix_value", "time_mix_w1", "time_mix_w2", "vis_attn_output", "vis_attn_qkv",
    "vis_down", "vis_gate", "vis_up",
};
// Looked up by row (GET_ROWS):
constexpr const char * kRowTensors[] = {
    "attn_compressor_ape", "d2t", "dec.attn_rel_b", "enc.attn_rel_b", "ffn_gate_tid2eid", "indexer_compressor_ape",
    "markov_w1", "nextn.embed_tokens", "per_layer_token_embd", "position_embd", "selector_predecessor",
    "selector_successor", "token_embd", "token_types",
};
// ... of which these are embeddings, added to the activations:
constexpr const char * kEmbeddingTensors[] = {
    "attn_compressor_ape", "indexer_compressor_ape", "nextn.embed_tokens", "per_layer_token_embd", "position_embd",
    "token_embd", "token_types",
};
// Everything else (MUL, ADD, DIV, SCALE, ROPE, SSM_CONV, SSM_SCAN, RWKV_WKV6): ggml's CPU kernels for those take
// an F32 operand next to F32 activations only (and llama.cpp's converter writes them as F32).
constexpr const char * kElementwiseTensors[] = {
    "altup_correct_scale", "altup_router_norm", "attn_compressor_norm", "attn_conv_base", "attn_k_norm",
    "attn_kv_a_norm", "attn_norm", "attn_norm_2", "attn_output_norm", "attn_q_a_norm", "attn_q_norm",
    "attn_res_score", "attn_sinks", "attn_sub_norm", "channel_mix_lerp_k", "channel_mix_lerp_r", "cls.norm",
    "dec.attn_norm", "dec.cross_attn_norm", "dec.ffn_norm", "dec.output_norm", "enc.attn_norm", "enc.ffn_norm",
    "enc.output_norm", "exp_probs_b", "exp_probs_b_vl", "ffn.act", "ffn_conv_base", "ffn_norm", "ffn_norm_exps",
    "ffn_res_score", "ffn_routed_norm", "ffn_sub_norm", "hc_attn_base", "hc_attn_norm", "hc_attn_scale",
    "hc_ffn_base", "hc_ffn_norm", "hc_ffn_scale", "hrm.z_l_init", "indexer.k_norm", "indexer.q_norm",
    "indexer_compressor_ape", "indexer_compressor_norm", "laurel_post_norm", "layer_output_norm",
    "layer_output_scale", "nextn.enorm", "nextn.hnorm", "nextn.shared_head_norm", "output_hc_base",
    "output_hc_norm", "output_hc_scale", "output_norm", "output_res_score", "per_layer_proj_norm", "ple_conv1d",
    "ple_norm_conv", "ple_norm_key", "ple_norm_query", "post_attention_norm", "post_ffw_norm", "post_ffw_norm_1",
    "post_ffw_norm_2", "post_norm", "pre_ffw_norm_2", "rope_factors_long", "rope_factors_short", "rope_freqs",
    "shortconv.conv", "ssm_a", "ssm_b_norm", "ssm_c_norm", "ssm_conv1d", "ssm_conv1d_k", "ssm_conv1d_q",
    "ssm_conv1d_v", "ssm_d", "ssm_dt_norm", "ssm_norm", "time_mix_a0", "time_mix_decay", "time_mix_first",
    "time_mix_k_a", "time_mix_k_k", "time_mix_lerp_fused", "time_mix_lerp_g", "time_mix_lerp_k", "time_mix_lerp_r",
    "time_mix_lerp_v", "time_mix_lerp_w", "time_mix_lerp_x", "time_mix_ln", "time_mix_r_k", "time_mix_v0",
    "time_mix_w0", "token_embd_norm",
};

template <size_t N> bool listed(const char * const (&names)[N], const std::string & name) {
    return std::find_if(std::begin(names), std::end(names), [&](const char * n) { return name == n; }) != std::end(names);
}

bool ends_with(const std::string & s, const char * suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// A tensor name split into its layer ("blk.N.", -1 for none) and the name within the layer.
struct LocalName {
    int64_t layer = -1;
    std::string local;
};

LocalName split(const std::string & name) {
    if (name.rfind("blk.", 0) != 0) return {-1, name};
    size_t i = 4;
    int64_t layer = 0;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9' && layer < (int64_t(1) << 32)) layer = layer * 10 + (name[i++] - '0');
    if (i == 4 || i >= name.size() || name[i] != '.') return {-1, name};
    return {layer, name.substr(i + 1)};
}

// A known tensor's role from its local name "<base>[.<suffix>]": a ".weight" (or no suffix) plays the base's
// role; biases and scales are added to or multiplied into F32 activations; low-rank factors are multiplied.
Role role_of(const std::string & local) {
    struct Suffix { const char * text; Role role; };   // Role::Unknown: the base's own role
    static const Suffix kSuffixes[] = {
        {".weight", Role::Unknown}, {".bias", Role::Elementwise}, {".scale", Role::Elementwise},
        {".scales", Role::Elementwise}, {".input_scale", Role::Elementwise}, {".lora_a", Role::Matmul}, {".lora_b", Role::Matmul},
    };
    std::string base = local;
    Role role = Role::Unknown;
    for (const Suffix & s : kSuffixes) {
        if (ends_with(local, s.text)) {
            base = local.substr(0, local.size() - std::strlen(s.text));
            role = s.role;
            break;
        }
    }
    const bool known = listed(kMatmulTensors, base) || listed(kRowTensors, base) || listed(kElementwiseTensors, base);
    if (!known) return Role::Unknown;
    if (role != Role::Unknown) return role;
    if (listed(kEmbeddingTensors, base)) return Role::Embedding;
    if (listed(kRowTensors, base)) return Role::Rows;
    if (listed(kMatmulTensors, base)) return Role::Matmul;
    return Role::Elementwise;
}

// ggml_mul_mat on the CPU: a dot product for the type, and a conversion of the F32 activations into the
// type that dot product takes (I8..I64, F64, Q8_1 and Q8_K have none of one or the other).
bool cpu_can_multiply(ggml_type type, int64_t row) {
    const ggml_type_traits_cpu * traits = ggml_get_type_traits_cpu(type);
    if (traits->vec_dot == nullptr) return false;
    const ggml_type activations = traits->vec_dot_type;
    return ggml_get_type_traits_cpu(activations)->from_float != nullptr && row % ggml_blck_size(activations) == 0;
}

// ggml_get_rows on the CPU giving F32 rows: the float types and every type that can be dequantized.
bool cpu_can_look_up(ggml_type type) {
    return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16 ||
           (ggml_is_quantized(type) && ggml_get_type_traits(type)->to_float != nullptr);
}

std::string type_name(ggml_type type) { return ggml_type_name(type); }

// --- architectures ---------------------------------------------------------------------------------------------------

// What llama.cpp's graph for an architecture asserts about heads: the GGML_ASSERTs at the top of the graph
// builders in src/models/*.cpp of build 0c1e570 (followed through `using graph = ...` to the builder an
// architecture borrows), and the loader's own "invalid n_rot" check. Value heads as wide as key heads ...
constexpr const char * kValueHeadIsKeyHead[] = {
    "afmoe", "apertus", "arcee", "arctic", "baichuan", "bailingmoe2", "bert", "bitnet", "bloom", "chameleon",
    "chatglm", "codeshell", "cogvlm", "cohere2", "cohere2moe", "command-r", "dbrx", "deci", "deepseek", "deepseek4",
    "dflash", "dots1", "dream", "eagle3", "ernie4_5", "ernie4_5-moe", "eurobert", "exaone", "exaone-moe", "exaone4",
    "falcon", "glm4", "glm4moe", "gpt2", "gptneox", "granite", "granite_swa", "granitehybrid", "granitemoe",
    "graniteswitch", "grok", "grovemoe", "hunyuan-dense", "hunyuan-moe", "hunyuan_vl", "hy_v3", "internlm2", "jais",
    "jais2", "jina-bert-v2", "jina-bert-v3", "laguna", "llada", "llada-moe", "llama", "llama-embed", "llama4",
    "maincoder", "maple", "mellum", "minicpm", "minimax-01", "minimax-m2", "minimax-m3", "mistral3", "modern-bert",
    "mpt", "muse-glimmer", "nanbeige", "nemotron", "nemotron_h", "nemotron_h_moe", "neo-bert", "nomic-bert",
    "nomic-bert-moe", "olmo", "olmo2", "olmoe", "openelm", "orion", "paddleocr", "pangu-embedded", "phi2", "phi3",
    "phimoe", "plamo", "pockettts", "qwen", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen35", "qwen35moe",
    "qwen3moe", "qwen3next", "qwen3tts", "qwen3vl", "qwen3vlmoe", "qwen4exp", "refact", "rnd1", "seed_oss",
    "smallthinker", "smollm3", "spark2_5", "stablelm", "starcoder", "starcoder2", "t5", "t5encoder", "talkie",
    "xverse",
};
// ... rope over the whole head (rope.dimension_count == the key head size) ...
constexpr const char * kRopeWholeHead[] = {
    "apertus", "arcee", "arctic", "baichuan", "chameleon", "codeshell", "cogvlm", "cohere2moe", "dbrx", "deci",
    "deepseek", "dots1", "dream", "ernie4_5", "ernie4_5-moe", "exaone", "exaone-moe", "exaone4", "falcon",
    "granite", "granite_swa", "granitemoe", "graniteswitch", "grok", "grovemoe", "hunyuan-dense", "hunyuan-moe",
    "hunyuan_vl", "hy_v3", "internlm2", "jais2", "llada", "llada-moe", "llama", "llama-embed", "llama4",
    "maincoder", "mellum", "minicpm", "mistral3", "olmo", "olmo2", "olmoe", "orion", "paddleocr", "pangu-embedded",
    "plamo", "pockettts", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3tts", "qwen3vl", "qwen3vlmoe",
    "rnd1", "seed_oss", "smallthinker", "smollm3", "starcoder2", "talkie", "xverse",
};
// ... each layer's tensors created from that layer's head counts (hparams.n_head(i) / n_head_kv(i) in
// load_arch_tensors), or hybrid and recurrent (llm_arch_is_hybrid / _recurrent: attention-free layers have no
// heads). All others create every layer with layer 0's head counts and build the graph with them ...
constexpr const char * kPerLayerHeadCounts[] = {
    "arwkv7", "bailingmoe3", "deci", "deepseek4", "dots3note", "falcon-h1", "gemma4", "gemma4-assistant", "glm5-next",
    "granitehybrid", "jamba", "kimi-k3", "kimi-linear", "laguna", "lfm2", "lfm2moe", "mamba", "mamba2", "mimo2",
    "minimax-01", "nemotron_h", "nemotron_h_moe", "openelm", "plamo2", "plamo3", "qwen35", "qwen35moe", "qwen3next",
    "qwen4exp", "rwkv6", "rwkv6qwen2", "rwkv7", "spark2_5", "step35",
};
// ... no rope (llama_model_rope_type): in all others, rope.dimension_count 0 makes ggml's rope kernel loop
// forever ...
constexpr const char * kNoRope[] = {
    "clip", "gpt2", "gptj", "mpt", "refact", "bloom", "mamba", "mamba2", "jamba", "jina-bert-v2", "t5", "t5encoder",
    "jais", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7", "wavtokenizer-dec", "nemotron_h", "nemotron_h_moe",
    "kimi-linear", "kimi-k3", "glm5-next",
};
// ... and attention projections of the standard shapes: attn_q / attn_k / attn_v produce n_head / n_head_kv /
// n_head_kv heads of the key / key / value size, attn_output takes n_head value heads. (The others use latent
// (MLA) or gated projections. Found by saving a model of every architecture with llama.cpp's
// tests/test-llama-archs.cpp and comparing.) Their graphs reshape the projections by the head counts and sizes,
// which GGML_ASSERTs when a count was changed to a value whose tensors llama.cpp still accepts.
constexpr const char * kStandardAttention[] = {
    "afmoe", "arcee", "arctic", "baichuan", "bailingmoe", "bailingmoe2", "bloom", "chatglm", "codeshell", "cogvlm",
    "cohere2", "cohere2moe", "command-r", "dbrx", "deci", "deepseek", "dots1", "dream", "ernie4_5", "ernie4_5-moe",
    "exaone", "exaone-moe", "exaone4", "falcon", "falcon-h1", "gemma", "gemma2", "gemma3", "glm4", "glm4moe",
    "gpt-oss", "gpt2", "gptneox", "granite", "granite_swa", "granitehybrid", "granitemoe", "grok", "grovemoe",
    "hrm_text", "hunyuan-dense", "hunyuan-moe", "hunyuan_vl", "hy_v3", "internlm2", "jais", "jais2", "jamba",
    "laguna", "lfm2", "lfm2moe", "llada", "llada-moe", "llama", "llama4", "maincoder", "maple", "mellum", "mimo2",
    "minicpm", "minicpm3", "minimax-01", "minimax-m2", "minimax-m3", "mistral3", "mpt", "muse-glimmer", "nanbeige",
    "nemotron", "nemotron_h", "nemotron_h_moe", "olmo", "olmo2", "olmoe", "openelm", "orion", "paddleocr",
    "pangu-embedded", "phi2", "phi3", "phimoe", "plamo", "plamo2", "plamo3", "pockettts", "qwen", "qwen2",
    "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3tts", "qwen3vl", "qwen3vlmoe", "refact", "rnd1", "seed_oss",
    "smallthinker", "smollm3", "spark2_5", "stablelm", "starcoder", "starcoder2", "talkie", "xverse",
};
// ... and sliding-window layers (set_swa_pattern / swa_type in their loaders), which may have head sizes of
// their own (attention.key_length_swa / value_length_swa).
constexpr const char * kSlidingWindow[] = {
    "afmoe", "cohere2", "cohere2moe", "deepseek4", "dflash", "dots3note", "exaone-moe", "exaone4",
    "gemma-embedding", "gemma2", "gemma3", "gemma3n", "gemma4", "gemma4-assistant", "gpt-oss", "granite_swa",
    "laguna", "lfm2", "lfm2moe", "llama4", "maple", "mellum", "mimo2", "modern-bert", "muse-glimmer", "nanbeige",
    "olmo2", "phi3", "phimoe", "plamo3", "smallthinker", "spark2_5", "step35",
};

// --- llama architecture shapes ---------------------------------------------------------------------------------

enum Dim : uint8_t { NONE, EMBD, VOCAB, Q, K, V, QKV, FF, ROT_HALF, EXPERT };

struct ShapeRule {
    const char * local;   // name within a layer (per_layer) or the whole name
    bool per_layer;
    Dim dims[3];
};

// The tensors llama.cpp creates for LLM_ARCH_LLAMA (src/models/llama.cpp, create_tensor_qkv), as ggml ne.
constexpr ShapeRule kLlamaShapes[] = {
    {"token_embd.weight", false, {EMBD, VOCAB}},
    {"output.weight", false, {EMBD, VOCAB}},
    {"output_norm.weight", false, {EMBD}},
    {"rope_freqs.weight", false, {ROT_HALF}},
    {"rope_factors_long.weight", false, {ROT_HALF}},
    {"rope_factors_short.weight", false, {ROT_HALF}},
    {"attn_norm.weight", true, {EMBD}},
    {"attn_q.weight", true, {EMBD, Q}},
    {"attn_k.weight", true, {EMBD, K}},
    {"attn_v.weight", true, {EMBD, V}},
    {"attn_qkv.weight", true, {EMBD, QKV}},
    {"attn_q.bias", true, {Q}},
    {"attn_k.bias", true, {K}},
    {"attn_v.bias", true, {V}},
    {"attn_qkv.bias", true, {QKV}},
    {"attn_output.weight", true, {Q, EMBD}},
    {"attn_output.bias", true, {EMBD}},
    {"ffn_norm.weight", true, {EMBD}},
    {"ffn_gate.weight", true, {EMBD, FF}},
    {"ffn_up.weight", true, {EMBD, FF}},
    {"ffn_down.weight", true, {FF, EMBD}},
    {"ffn_gate.bias", true, {FF}},
    {"ffn_up.bias", true, {FF}},
    {"ffn_down.bias", true, {EMBD}},
    {"ffn_gate_inp.weight", true, {EMBD, EXPERT}},
    {"ffn_gate_exps.weight", true, {EMBD, FF, EXPERT}},
    {"ffn_up_exps.weight", true, {EMBD, FF, EXPERT}},
    {"ffn_down_exps.weight", true, {FF, EMBD, EXPERT}},
};

// A dimension's value; -1 when unknown (no vocabulary size) or when it does not fit in 64 bits.
int64_t dim_value(Dim d, const LlamaDims & m) {
    int64_t q = 0, k = 0, v = 0, qkv = 0;
    const bool ok = !__builtin_mul_overflow(m.head_k, m.n_head, &q) && !__builtin_mul_overflow(m.head_k, m.n_head_kv, &k) &&
                    !__builtin_mul_overflow(m.head_v, m.n_head_kv, &v) && !__builtin_add_overflow(q, k, &qkv) &&
                    !__builtin_add_overflow(qkv, v, &qkv);
    switch (d) {
        case EMBD: return m.n_embd;
        case VOCAB: return m.n_vocab > 0 ? m.n_vocab : -1;
        case Q: return ok ? q : -1;
        case K: return ok ? k : -1;
        case V: return ok ? v : -1;
        case QKV: return ok ? qkv : -1;
        case FF: return m.n_ff;
        case ROT_HALF: return m.n_rot / 2;
        case EXPERT: return m.n_expert;
        case NONE: break;
    }
    return 1;
}

std::string shape_string(const int64_t * ne, size_t n) {
    std::string s = "[";
    for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

}  // namespace

unsigned architecture_traits(const std::string & arch) {
    return (listed(kValueHeadIsKeyHead, arch) ? kTraitValueHeadIsKeyHead : 0u) |
           (listed(kRopeWholeHead, arch) ? kTraitRopeWholeHead : 0u) |
           (listed(kPerLayerHeadCounts, arch) ? kTraitPerLayerHeadCounts : 0u) |
           (listed(kNoRope, arch) ? kTraitNoRope : 0u) |
           (listed(kStandardAttention, arch) ? kTraitStandardAttention : 0u) |
           (listed(kSlidingWindow, arch) ? kTraitSlidingWindow : 0u);
}

std::string tensor_type_problem(const std::vector<TensorDecl> & tensors) {
    bool has_output = false;
    for (const TensorDecl & t : tensors) has_output = has_output || t.name == "output.weight";
    for (const TensorDecl & t : tensors) {
        const std::string prefix = "tensor '" + t.name + "' has type " + type_name(t.type) + ", ";
        switch (role_of(split(t.name).local)) {
            case Role::Elementwise:
                if (t.type != GGML_TYPE_F32) return prefix + "but norm, bias, scale and other elementwise tensors must be f32";
                break;
            case Role::Rows:   // index maps (e.g. token -> expert) may be I32
                if (t.type != GGML_TYPE_I32 && !cpu_can_look_up(t.type)) return prefix + "which ggml cannot look rows up in";
                break;
            case Role::Embedding:   // I32 rows would stay I32, which cannot be added to the activations
                if (!cpu_can_look_up(t.type)) return prefix + "which ggml cannot look embeddings up in";
                // Without output.weight, llama.cpp multiplies with the embedding matrix for the logits.
                if (t.name == "token_embd.weight" && !has_output && !cpu_can_multiply(t.type, t.ne[0]))
                    return prefix + "which ggml cannot multiply, and it is also the output matrix (no output.weight)";
                break;
            case Role::Matmul:
                if (!cpu_can_multiply(t.type, t.ne[0]))
                    return prefix + "which ggml cannot multiply (a matrix needs a float or quantized type with a CPU dot product)";
                break;
            case Role::Unknown:
                break;
        }
    }
    return "";
}

std::string attention_shape_problem(const std::vector<TensorDecl> & tensors, const AttentionDims & dims) {
    // Which dimension of each projection counts heads, and of which kind: (query or key/value heads, key or value size).
    struct Projection { const char * local; int dim; bool kv_heads; bool value_size; bool fused; };
    static const Projection kProjections[] = {
        {"attn_q.weight", 1, false, false, false},
        {"attn_k.weight", 1, true, false, false},
        {"attn_v.weight", 1, true, true, false},
        {"attn_output.weight", 0, false, true, false},
        {"attn_qkv.weight", 1, false, false, true},
    };
    for (const TensorDecl & t : tensors) {
        const LocalName n = split(t.name);
        if (n.layer < 0 || n.layer >= static_cast<int64_t>(dims.n_head.size())) continue;
        for (const Projection & p : kProjections) {
            if (n.local != p.local) continue;
            const int64_t heads = p.kv_heads ? dims.n_head_kv[n.layer] : dims.n_head[n.layer];
            const int64_t kv = dims.n_head_kv[n.layer], q = dims.n_head[n.layer];
            // Full and sliding-window layers may differ in head size; which layers slide is not in the file.
            bool match = false;
            for (auto [k, v] : {std::pair{dims.head_k, dims.head_v}, std::pair{dims.head_k_swa, dims.head_v_swa}}) {
                int64_t want = 0, a = 0, b = 0;
                const bool ok = p.fused ? !__builtin_mul_overflow(q, k, &a) && !__builtin_mul_overflow(kv, k + v, &b) &&
                                              !__builtin_add_overflow(a, b, &want)
                                        : !__builtin_mul_overflow(heads, p.value_size ? v : k, &want);
                match = match || (ok && t.ne[p.dim] == want);
            }
            if (!match) {
                const std::string heads_of = p.fused ? std::to_string(q) + " query and " + std::to_string(kv) + " key/value heads"
                                                     : std::to_string(heads) + " heads of size " +
                                                           std::to_string(p.value_size ? dims.head_v : dims.head_k);
                return "tensor '" + t.name + "' has shape " + shape_string(t.ne, t.n_dims) + ", which does not fit " + heads_of +
                       " (layer " + std::to_string(n.layer) + ")";
            }
            break;
        }
    }
    return "";
}

std::string llama_shape_problem(const std::vector<TensorDecl> & tensors, const LlamaDims & dims) {
    for (const TensorDecl & t : tensors) {
        const LocalName n = split(t.name);
        if (n.layer >= dims.n_layer) continue;   // not a tensor llama.cpp uses: it reports that itself
        for (const ShapeRule & rule : kLlamaShapes) {
            if (rule.per_layer != (n.layer >= 0) || n.local != rule.local) continue;
            int64_t want[GGML_MAX_DIMS] = {1, 1, 1, 1};
            size_t n_want = 0;
            bool known = true;
            for (Dim d : rule.dims) {
                if (d == NONE) break;
                want[n_want++] = dim_value(d, dims);
                known = known && want[n_want - 1] >= 0;
            }
            if (!known) break;
            for (size_t i = 0; i < GGML_MAX_DIMS; ++i) {
                if (t.ne[i] != want[i])
                    return "tensor '" + t.name + "' has shape " + shape_string(t.ne, t.n_dims) +
                           " but the hyperparameters make it " + shape_string(want, n_want);
            }
            break;
        }
    }
    return "";
}

}  // namespace ohai
