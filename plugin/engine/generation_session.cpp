#include "generation_session.h"

#include <climits>

namespace ohai {
namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

double per_second(int32_t n, double ms) { return ms > 0 ? n * 1000.0 / ms : 0.0; }

}  // namespace

GenerationSession::GenerationSession(WorkerContext & wc, std::shared_ptr<Generation> generation, llama_seq_id seq,
                                     size_t n_cached)
    : wc_(wc), generation_(std::move(generation)), seq_(seq), text_({}) {
    const GenerateRequest & req = gen().request;
    limit_ = req.max_tokens < 0 ? INT32_MAX : req.max_tokens;
    out_.usage.prompt_tokens = static_cast<int32_t>(gen().prompt.size());
    t_prompt_ = Clock::now();
    if (gen().cancel_requested) {
        finish(FinishReason::Cancelled);
        return;
    }
    try {
        text_ = TextStream(req.stop);
        sequence_ = gen().prompt;
        sampler_ = make_sampler(req.sampling, wc_.model->info().n_vocab);
        // Penalties look at the prompt too, as in llama.cpp's own tools.
        for (Token t : sequence_) llama_sampler_accept(sampler_.get(), t);
    } catch (const Error & e) {
        fail(e);
        return;
    } catch (const std::exception & e) {
        fail(Error(ErrorCode::Internal, e.what()));
        return;
    }
    // At least the last prompt token is decoded: its logits give the first generated token.
    n_past_ = std::min(n_cached, sequence_.size() - 1);
    out_.usage.cached_prompt_tokens = static_cast<int32_t>(n_past_);
}

void GenerationSession::add_inputs(llama_batch & batch, size_t n) {
    const size_t end = std::min(sequence_.size(), n_past_ + n);
    if (sampled_ && n_decoded_ == 0 && pending() == 1) t_decode_ = Clock::now();
    output_row_ = -1;
    n_added_ = end - n_past_;
    for (size_t i = n_past_; i < end; ++i) {
        const int32_t k = batch.n_tokens++;
        batch.token[k] = sequence_[i];
        batch.pos[k] = static_cast<llama_pos>(i);
        batch.n_seq_id[k] = 1;
        batch.seq_id[k][0] = seq_;
        batch.logits[k] = i + 1 == sequence_.size();
        if (batch.logits[k]) output_row_ = k;
    }
}

void GenerationSession::discard_inputs() {
    n_added_ = 0;
    output_row_ = -1;
}

void GenerationSession::move_to(llama_seq_id seq, size_t n_cached) {
    seq_ = seq;
    n_past_ = std::min(n_cached, sequence_.size() - 1);
    discard_inputs();
}

void GenerationSession::after_decode() {
    const bool generating = sampled_ && n_added_ == 1;
    if (generating) ++n_decoded_;
    n_past_ += n_added_;
    n_added_ = 0;
    if (output_row_ < 0) return;   // a prompt chunk without output: the next chunk follows
    if (!sampled_) out_.timings.prompt_ms = ms_between(t_prompt_, Clock::now());
    sample();
}

void GenerationSession::sample() {
    sampled_ = true;
    if (static_cast<int32_t>(out_.tokens.size()) >= limit_) return finish(FinishReason::Length);
    const Model & model = *wc_.model;
    const Token tok = llama_sampler_sample(sampler_.get(), wc_.ctx.get(), output_row_);
    output_row_ = -1;
    if (model.is_end_of_generation(tok)) return finish(FinishReason::Stop);
    out_.tokens.push_back(tok);
    sequence_.push_back(tok);
    gen().push_piece(text_.push(model.token_to_piece(tok)));
    if (text_.stopped()) return finish(FinishReason::Stop);
    // Prompt plus completion never exceed the context: the next token would have no room.
    if (static_cast<int32_t>(out_.tokens.size()) >= limit_ || sequence_.size() >= wc_.n_ctx)
        return finish(FinishReason::Length);
}

void GenerationSession::finish(FinishReason reason) {
    if (done_) return;
    done_ = true;
    out_.finish_reason = reason;
    if (n_decoded_ > 0) out_.timings.decode_ms = ms_between(t_decode_, Clock::now());
    gen().push_piece(text_.flush());
    out_.text = text_.text();
    out_.usage.completion_tokens = static_cast<int32_t>(out_.tokens.size());
    out_.timings.prompt_per_second = per_second(out_.usage.prompt_tokens, out_.timings.prompt_ms);
    out_.timings.decode_per_second = per_second(n_decoded_, out_.timings.decode_ms);
}

void GenerationSession::fail(const Error & error) {
    if (done_) return;
    done_ = true;
    error_ = error;
}

void GenerationSession::deliver() {
    if (!done_ || delivered_) return;
    delivered_ = true;
    if (error_) gen().fail(*error_);
    else gen().finish(std::move(out_));
}

}  // namespace ohai
