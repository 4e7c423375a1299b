#include "generation_runner.h"

#include <chrono>

#include "sampler.h"
#include "text_stream.h"

namespace ohai {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double per_second(int32_t n, double ms) { return ms > 0 ? n * 1000.0 / ms : 0.0; }

Completion generate(WorkerContext & wc, Generation::Impl & gen) {
    const Model & model = *wc.model;
    const GenerateRequest & req = gen.request;
    Completion out;
    out.usage.prompt_tokens = static_cast<int32_t>(gen.prompt.size());

    auto cancelled = [&] { return gen.cancel_requested.load(); };
    if (cancelled()) {
        out.finish_reason = FinishReason::Cancelled;
        return out;
    }

    llama_sampler_ptr sampler = make_sampler(req.sampling, model.info().n_vocab);
    // Penalties look at the prompt too, as in llama.cpp's own tools.
    for (Token t : gen.prompt) llama_sampler_accept(sampler.get(), t);

    wc.clear();
    const auto t_prompt = Clock::now();
    int rc = wc.decode(wc.ctx.get(), gen.prompt, 0, gen.prompt.size(), false);
    out.timings.prompt_ms = ms_since(t_prompt);
    if (rc == 2 || cancelled()) {
        out.finish_reason = FinishReason::Cancelled;
        return out;
    }
    if (rc != 0) throw Error(ErrorCode::Internal, "llama_decode failed on the prompt (code " + std::to_string(rc) + ")");

    TextStream stream(req.stop);
    std::vector<Token> sequence = gen.prompt;
    size_t n_past = gen.prompt.size();
    const int32_t limit = req.max_tokens < 0 ? INT32_MAX : req.max_tokens;
    out.finish_reason = FinishReason::Length;
    auto t_decode = Clock::now();
    int32_t n_decoded = 0;
    while (static_cast<int32_t>(out.tokens.size()) < limit) {
        if (cancelled()) { out.finish_reason = FinishReason::Cancelled; break; }
        const Token tok = llama_sampler_sample(sampler.get(), wc.ctx.get(), -1);
        if (model.is_end_of_generation(tok)) { out.finish_reason = FinishReason::Stop; break; }
        out.tokens.push_back(tok);
        gen.push_piece(stream.push(model.token_to_piece(tok)));
        if (stream.stopped()) { out.finish_reason = FinishReason::Stop; break; }
        // Prompt plus completion never exceed the context: the next token would have no room.
        if (static_cast<int32_t>(out.tokens.size()) >= limit || n_past + 1 >= wc.n_ctx) break;

        sequence.push_back(tok);   // positions are indices into the whole sequence
        // The first token came from the prompt's logits: decode time starts with the first decode.
        if (n_decoded == 0) t_decode = Clock::now();
        rc = wc.decode(wc.ctx.get(), sequence, n_past, n_past + 1, false);
        if (rc == 2 || cancelled()) { out.finish_reason = FinishReason::Cancelled; break; }
        if (rc != 0) throw Error(ErrorCode::Internal, "llama_decode failed while generating (code " + std::to_string(rc) + ")");
        ++n_past;
        ++n_decoded;
    }
    out.timings.decode_ms = n_decoded > 0 ? ms_since(t_decode) : 0.0;
    gen.push_piece(stream.flush());
    out.text = stream.text();
    out.usage.completion_tokens = static_cast<int32_t>(out.tokens.size());
    out.timings.prompt_per_second = per_second(out.usage.prompt_tokens, out.timings.prompt_ms);
    out.timings.decode_per_second = per_second(n_decoded, out.timings.decode_ms);
    return out;
}

}  // namespace

void run_generation(WorkerContext & wc, Generation::Impl & gen) {
    wc.cancel_flag = &gen.cancel_requested;
    try {
        gen.finish(generate(wc, gen));
    } catch (const Error & e) {
        gen.fail(e);
    } catch (const std::exception & e) {
        gen.fail(Error(ErrorCode::Internal, e.what()));
    }
    wc.cancel_flag = nullptr;
}

}  // namespace ohai
