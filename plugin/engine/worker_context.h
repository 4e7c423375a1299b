// The llama.cpp state that one worker thread owns: the generation context and,
// created on first use, an embedding context. Only the worker touches it.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "llama-cpp.h"
#include "ohai/engine.h"
#include "ohai/model.h"
#include "thread_pool.h"

namespace ohai {

struct WorkerContext {
    WorkerContext(std::shared_ptr<Model> model, const EngineParams & params, uint32_t n_ctx);

    std::shared_ptr<Model> model;
    EngineParams params;
    uint32_t n_ctx;
    ThreadPoolPtr pool;            // declared first: outlives the contexts that use it
    llama_context_ptr ctx;
    llama_context_ptr embed_ctx;   // lazily, see embedding_context()
    uint32_t embed_capacity = 0;
    llama_context_ptr logits_ctx;  // lazily, see logits_context()
    uint32_t logits_capacity = 0;
    // Set while a decode may be aborted (the engine closing).
    std::atomic<const std::atomic<bool> *> cancel_flag{nullptr};

    // A context that pools sequences of up to `n_tokens` (grown on demand, at most n_ctx).
    llama_context * embedding_context(uint32_t n_tokens);
    // A one-sequence context for logits requests of up to `n_tokens`, emptied: the generation
    // context's sequences are never touched by them.
    llama_context * logits_context(uint32_t n_tokens);
    // Decodes tokens[begin, end) of sequence 0 at positions begin.. in chunks of n_batch; when
    // `all_logits` every position gets logits, otherwise only the last one.
    // Returns llama_decode's code (0 = ok, 2 = aborted).
    int decode(llama_context * c, const std::vector<Token> & tokens, size_t begin, size_t end, bool all_logits);
};

}  // namespace ohai
