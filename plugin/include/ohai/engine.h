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

struct EngineParams {
    uint32_t n_ctx    = 0;   // context length in tokens; 0 = min(training context, 4096)
    int32_t n_threads = 0;   // 0 = all hardware threads
    uint32_t n_batch  = 2048;  // tokens per llama_decode for prompts
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

    // Validates and tokenizes on the calling thread (throws InvalidArgument /
    // ContextOverflow), then queues the request.
    std::shared_ptr<Generation> submit(const GenerateRequest & request);

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
    uint32_t n_ctx_ = 0;
    std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace ohai
