// ohai — the engine: one model, a worker thread that owns the llama.cpp
// context, and a request queue that any number of threads may submit to.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ohai/generation.h"
#include "ohai/model.h"

namespace ohai {

// Cache types for the KV cache (keys and values). Quantized types take less memory per token
// (q8_0 about half of f16, q4_0 about a quarter) at a small cost in accuracy.
enum class KvType { F16, Q8_0, Q4_0 };
const char * kv_type_name(KvType type);
// Parses "f16", "q8_0", "q4_0" (case-insensitive); throws InvalidArgument otherwise.
KvType parse_kv_type(const std::string & name);

struct EngineParams {
    uint32_t n_ctx      = 0;    // tokens in the KV cache, shared by all sequences; 0 = min(training context, 4096)
    int32_t n_threads   = 0;    // 0 = all hardware threads
    // Sequences decoded together (continuous batching). 4 on every device: on a 2-core board a
    // decode step of 4 tokens costs little more than one (the weights are read once), and more
    // sequences mostly queue for the same two cores. 0 = that default.
    uint32_t n_parallel = 0;
    // Tokens per decode step (llama_decode). Prompts are fed in chunks of at most this many, so
    // a long prompt delays the running streams by at most one chunk.
    uint32_t n_batch    = 512;
    uint32_t max_queued = 64;   // requests waiting for a sequence; beyond it submit() throws Error(Overloaded)
    KvType kv_type      = KvType::F16;
    uint32_t kv_block   = 32;   // KV cells per accounting block (paged accounting; see scheduler.h)
};

// What the engine is doing, for monitoring (Model.stats(), the server's /metrics).
struct EngineStats {
    uint32_t n_parallel = 0;
    uint32_t running = 0;                 // requests holding a sequence (prefilling or generating)
    uint32_t queued = 0;                  // requests waiting for one (preempted ones included)
    uint32_t kv_block_size = 0;
    uint32_t kv_blocks_total = 0;
    uint32_t kv_blocks_used = 0;          // held by running requests
    uint32_t kv_blocks_cached = 0;        // held by finished sequences kept as prefix cache (evictable)
    uint64_t requests_completed = 0;      // ended with stop or length
    uint64_t requests_cancelled = 0;      // cancelled by their caller (or a disconnect), or by close()
    uint64_t requests_failed = 0;
    uint64_t requests_rejected = 0;       // refused with Overloaded
    uint64_t preemptions = 0;             // running requests sent back to the queue under KV pressure
    uint64_t tokens_generated = 0;
    uint64_t prompt_tokens_decoded = 0;
    uint64_t prompt_tokens_cached = 0;    // prompt tokens served from the prefix cache instead
};

class Scheduler;

class Engine {
public:
    // Creates the context on a worker thread. Throws Error on a vocab-only model or a failed context.
    //
    // fork(): the worker thread does not exist in a child process. There, every call of an Engine
    // created before the fork throws Error(InvalidState), close() does nothing and the destructor
    // leaks the engine on purpose (joining a thread that is not there, or taking a lock a parent
    // thread held at the fork, would hang). A new Engine created in the child works.
    Engine(std::shared_ptr<Model> model, const EngineParams & params);
    ~Engine();   // cancels pending work and joins the worker
    Engine(const Engine &) = delete;
    Engine & operator=(const Engine &) = delete;

    const Model & model() const { return *model_; }
    uint32_t n_ctx() const { return n_ctx_; }
    const EngineParams & params() const { return params_; }   // with defaults resolved
    EngineStats stats() const;

    // Validates and tokenizes on the calling thread (throws InvalidArgument /
    // ContextOverflow), then queues the request.
    // `callbacks` (optional) push pieces and the result instead of queueing them (see generation.h).
    std::shared_ptr<Generation> submit(const GenerateRequest & request, GenerationCallbacks callbacks = {});

    // submit() + read every piece on the calling thread: `on_piece` runs here, never on the
    // worker; returning false from it cancels the request.
    Completion generate(const GenerateRequest & request,
                        const std::function<bool(const std::string &)> & on_piece = {});

    // Pooled (mean) embeddings, one vector of n_embd floats per text.
    std::vector<std::vector<float>> embed(const std::vector<std::string> & texts, bool normalize);

    // Logits for every position of `tokens`: the first `prompt_tokens` are decoded as one
    // batch, the rest one at a time through the KV cache. Row-major [tokens.size() x n_vocab].
    std::vector<float> logits(const std::vector<Token> & tokens, size_t prompt_tokens);

    // Stops accepting work; pending requests end as cancelled, a running embed/logits call
    // throws Error(Cancelled). Idempotent.
    void close();

private:
    std::shared_ptr<Model> model_;
    EngineParams params_;
    uint32_t n_ctx_ = 0;
    std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace ohai
