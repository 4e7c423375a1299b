// One generation request as a step-by-step state machine on one sequence of the worker's
// context. Each step the scheduler asks every session for its next input tokens (a chunk of
// what is not in the KV cache yet, or the token it sampled last), decodes them all in one batch,
// then lets each session sample from its output row. A session survives preemption: its KV
// cells are dropped and it is fed again from its tokens (prompt + generated so far) later,
// possibly on another sequence.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "generation_impl.h"
#include "sampler.h"
#include "text_stream.h"
#include "worker_context.h"

namespace ohai {

class GenerationSession {
public:
    // Takes the request over on sequence `seq`, whose first `n_cached` prompt tokens are already in
    // the KV cache (prefix cache). Never throws; a bad request finishes the session at once.
    GenerationSession(WorkerContext & wc, std::shared_ptr<Generation> generation, llama_seq_id seq, size_t n_cached);

    bool done() const { return done_; }
    bool cancel_requested() { return gen().cancel_requested.load(); }
    llama_seq_id seq() const { return seq_; }
    // Tokens of this sequence in the KV cache, and known tokens not yet there.
    size_t n_past() const { return n_past_; }
    size_t pending() const { return sequence_.size() - n_past_; }
    // prompt + generated; the first n_past() are in the KV cache.
    const std::vector<Token> & tokens() const { return sequence_; }
    const std::shared_ptr<Generation> & generation() const { return generation_; }
    bool sampled() const { return sampled_; }   // past the prompt phase
    bool failed() const { return error_.has_value(); }
    FinishReason finish_reason() const { return out_.finish_reason; }   // once done and not failed

    // Appends up to `n` of the pending tokens to `batch` (logits only for the last known token).
    void add_inputs(llama_batch & batch, size_t n);
    // The batch with this step's inputs was decoded: samples when the output row is ready,
    // streams its text, and finishes on a stop, the length limit or an error.
    void after_decode();
    // The batch was not decoded (no room, retried later): forget this step's inputs.
    void discard_inputs();
    // The scheduler dropped this sequence's KV cells; the session continues on `seq` later,
    // where its first `n_cached` tokens are in the cache.
    void move_to(llama_seq_id seq, size_t n_cached);
    void finish_cancelled() { finish(FinishReason::Cancelled); }
    // Stops with reason "length": the KV cache cannot hold this sequence any longer.
    void finish_for_length() { finish(FinishReason::Length); }
    // Ends the request with `error` (no-op once done).
    void fail(const Error & error);
    // Hands the result (Completion or Error) to the caller. The scheduler calls it once the
    // session is done and its statistics are published, so that a caller who sees the result
    // also sees the engine's state after it.
    void deliver();

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
    size_t n_past_ = 0;             // tokens of `sequence_` in the KV cache
    size_t n_added_ = 0;            // tokens this step put into the batch
    int32_t output_row_ = -1;       // batch row holding the logits to sample from, -1 = none this step
    int32_t limit_ = 0;
    int32_t n_decoded_ = 0;         // decode steps for generated tokens (for the decode rate)
    bool sampled_ = false;          // the prompt phase is over
    Completion out_;
    std::optional<Error> error_;
    Clock::time_point t_prompt_, t_decode_;
    bool done_ = false;
    bool delivered_ = false;
};

}  // namespace ohai
