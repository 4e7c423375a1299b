// The shared state of one submitted generation: the request (already tokenized),
// the pieces waiting for the caller, and how it ended.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "ohai/generation.h"
#include "ohai/error.h"

namespace ohai {

struct Generation::Impl {
    GenerateRequest request;
    std::vector<Token> prompt;
    std::atomic<bool> cancel_requested{false};

    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::string> pieces;
    bool finished = false;
    std::optional<Completion> completion;
    std::optional<Error> error;
    GenerationCallbacks callbacks;   // set before the request is queued; read by the worker only

    // Worker side.
    void push_piece(std::string piece);
    void finish(Completion c);
    void fail(const Error & e);
    void call_on_done(const Completion * c, const Error * e);
};

}  // namespace ohai
