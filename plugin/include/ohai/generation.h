// ohai — what a caller asks the engine to generate, and what it gets back.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ohai/error.h"
#include "ohai/model.h"

namespace ohai {

struct SamplingParams {
    float temperature    = 0.8f;   // 0 = greedy
    int32_t top_k        = 40;     // 0 = off
    float top_p          = 0.95f;  // 1 = off
    float min_p          = 0.05f;  // 0 = off
    float repeat_penalty = 1.0f;   // 1 = off
    int32_t repeat_last_n = 64;
    std::optional<uint32_t> seed;  // empty = a fresh random seed per request
};

struct GenerateRequest {
    std::string prompt;               // used when `prompt_tokens` is empty
    std::vector<Token> prompt_tokens; // takes precedence over `prompt`
    bool add_special   = true;        // for text prompts: BOS as the model wants
    bool parse_special = true;        // for text prompts: control tokens written as text are tokens
    int32_t max_tokens = 256;         // < 0 = until the context is full
    std::vector<std::string> stop;    // stop strings; never part of the returned text
    SamplingParams sampling;
};

enum class FinishReason { Stop, Length, Cancelled };
const char * finish_reason_name(FinishReason reason);

struct Usage {
    int32_t prompt_tokens        = 0;
    int32_t completion_tokens    = 0;
    int32_t cached_prompt_tokens = 0;   // of prompt_tokens, those served from the prefix cache
};

struct Timings {
    double prompt_ms = 0;
    double decode_ms = 0;
    double prompt_per_second = 0;
    double decode_per_second = 0;
};

struct Completion {
    std::string text;
    std::vector<Token> tokens;   // generated tokens, including any that produced a stop string
    FinishReason finish_reason = FinishReason::Stop;
    Usage usage;
    Timings timings;
};

// The push path: instead of polling Generation::next(), have the engine call these. They run on
// the engine's worker thread, outside every engine lock, so they must return quickly and must not
// call back into the engine (submit, close, ...); hand the data to a thread or an IPC reply.
// With on_piece set, pieces are not queued for next(). on_done runs exactly once, with the
// Completion or the Error (the other is null), once the result is final (a thread in wait() may
// already have it). A callback that throws is logged; a throwing on_piece cancels its request.
struct GenerationCallbacks {
    std::function<void(const std::string & piece)> on_piece;
    std::function<void(const Completion * completion, const Error * error)> on_done;
};

// A submitted generation: the caller reads its text pieces as they are
// produced and its final Completion. Shared between the caller and the worker.
class Generation {
public:
    enum class Poll { Piece, Done, Timeout };

    // Waits up to `timeout` for the next piece of text. Pieces never split a UTF-8 character
    // and never contain (part of) a stop string. Returns Done once all pieces were read.
    Poll next(std::string & piece, std::chrono::milliseconds timeout);
    // Blocks until the request ends; returns its Completion or throws its Error.
    Completion wait();
    // Waits up to `timeout` for the request to end; true when it has.
    bool wait_for(std::chrono::milliseconds timeout);
    // Asks the worker to stop this request; safe from any thread, any number of times.
    void cancel();
    bool cancelled() const;

    // Worker side.
    struct Impl;
    explicit Generation(std::unique_ptr<Impl> impl);
    ~Generation();
    Impl & impl() { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace ohai
