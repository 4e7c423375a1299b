// What llama.cpp's graphs need of a GGUF's tensors, by role: the types ggml's CPU kernels can run for
// each tensor's role, the shapes the hyperparameters imply, and what each architecture's code assumes
// of its heads (tables derived from the pinned llama.cpp source, build 0c1e570).
//
// Why: llama.cpp never checks tensor types, and checks shapes against hyperparameters computed in
// 32-bit arithmetic and against its own assumptions. A norm weight declared I32 (same size as F32), a
// matrix declared I16 or a head count whose tensors still fit loads fine and then aborts or crashes
// the process at the first decode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ggml.h"

namespace ohai {

// One entry of a GGUF tensor table (already checked for structure: dims, type id, bounds).
struct TensorDecl {
    std::string name;
    uint32_t n_dims = 0;
    int64_t ne[GGML_MAX_DIMS] = {1, 1, 1, 1};
    ggml_type type = GGML_TYPE_F32;
};

// A llama-architecture model's dimensions, from hyperparameters already checked to be in range
// (this architecture uses the same value in every layer). n_vocab 0 = unknown.
struct LlamaDims {
    int64_t n_embd = 0, n_vocab = 0, n_layer = 0;
    int64_t n_head = 0, n_head_kv = 0, head_k = 0, head_v = 0, n_rot = 0, n_ff = 0, n_expert = 0;
};

// What llama.cpp's code for an architecture (general.architecture) assumes of its heads.
enum ArchitectureTrait : unsigned {
    kTraitValueHeadIsKeyHead = 1,    // attention.value_length == attention.key_length
    kTraitRopeWholeHead = 2,         // rope.dimension_count == attention.key_length
    kTraitPerLayerHeadCounts = 4,    // per-layer head counts may differ (else: layer 0's count in every layer)
    kTraitNoRope = 8,                // no rope at all
    kTraitStandardAttention = 16,    // attn_q/k/v/output shapes follow from the head counts and sizes
    kTraitSlidingWindow = 32,        // has sliding-window layers, whose head sizes may differ
};
unsigned architecture_traits(const std::string & arch);

// An architecture's heads, per layer, from hyperparameters already checked to be in range.
struct AttentionDims {
    std::vector<int64_t> n_head, n_head_kv;   // one entry per layer
    int64_t head_k = 0, head_v = 0;           // key and value head sizes
    int64_t head_k_swa = 0, head_v_swa = 0;   // the same in sliding-window layers (= the above without them)
};

// "" when every tensor's type suits its role, else why not (naming the tensor and its type).
// Tensors whose role is unknown are left to llama.cpp.
std::string tensor_type_problem(const std::vector<TensorDecl> & tensors);

// For kTraitStandardAttention architectures: "" when the attention projections of every layer have the
// widths the head counts and sizes imply (64-bit arithmetic), else why not.
std::string attention_shape_problem(const std::vector<TensorDecl> & tensors, const AttentionDims & dims);

// "" when every tensor the llama architecture uses has the shape `dims` imply, else why not.
// Expected shapes are computed in 64-bit arithmetic, so no count can wrap around to a plausible one.
std::string llama_shape_problem(const std::vector<TensorDecl> & tensors, const LlamaDims & dims);

}  // namespace ohai
