// ohai — what a caller asks the engine to generate, and what it gets back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
    int32_t prompt_tokens     = 0;
    int32_t completion_tokens = 0;
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

}  // namespace ohai
