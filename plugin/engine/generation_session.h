// One generation request as a step-by-step state machine on a sequence of the worker's
// context: the scheduler asks each session for its next input tokens, decodes them (one
// batch may carry several sessions' inputs), then lets each session sample from its row.
#pragma once

#include <chrono>
#include <memory>

#include "generation_impl.h"
#include "sampler.h"
#include "text_stream.h"
#include "worker_context.h"

namespace ohai {

class GenerationSession {
public:
    // Takes the request over: clears `seq` in the context and prepares sampling.
    // Never throws; a bad request finishes the session at once with its error.
    GenerationSession(WorkerContext & wc, std::shared_ptr<Generation> generation, llama_seq_id seq);

    bool done() const { return done_; }
    const std::atomic<bool> & cancel_flag() { return gen().cancel_requested; }

    // Appends this session's next input (a chunk of the prompt, or the token it sampled last)
    // to `batch`, using at most `room` slots. Call only while !done().
    void add_inputs(llama_batch & batch, int32_t room);
    // Called after the batch holding this session's inputs was decoded with result `rc`:
    // samples the next token when the session's output row is ready, streams its text, and
    // finishes the request on a stop, the length limit, cancellation or an error.
    void after_decode(int rc);
    // Ends the request with `error` (no-op once done).
    void fail(const Error & error);

private:
    using Clock = std::chrono::steady_clock;

    Generation::Impl & gen() { return generation_->impl(); }
    void sample();
    void finish(FinishReason reason);

    WorkerContext & wc_;
    std::shared_ptr<Generation> generation_;
    llama_seq_id seq_;
    llama_sampler_ptr sampler_;
    TextStream text_;
    std::vector<Token> sequence_;   // prompt + generated; positions are indices into it
    size_t n_past_ = 0;             // tokens of `sequence_` already in the KV cache
    size_t n_added_ = 0;            // tokens this step put into the batch
    int32_t output_row_ = -1;       // batch row holding the logits to sample from, -1 = none this step
    int32_t limit_ = 0;
    int32_t n_decoded_ = 0;         // decode steps for generated tokens (for the decode rate)
    Completion out_;
    Clock::time_point t_prompt_, t_decode_;
    bool done_ = false;
};

}  // namespace ohai
