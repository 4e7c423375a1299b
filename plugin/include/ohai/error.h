// ohai — the one error type of the engine.
#pragma once

#include <stdexcept>
#include <string>

namespace ohai {

enum class ErrorCode {
    InvalidArgument,   // a bad request or parameter from the caller
    ModelLoad,         // a model file that is missing, unreadable or not a valid GGUF
    ContextOverflow,   // the prompt (plus what must be generated) does not fit the context
    InvalidState,      // a call in the wrong order, e.g. on a closed engine
    Cancelled,         // the caller cancelled the request
    Overloaded,        // the request queue is full: try again later
    Unsupported,       // this build cannot run here, e.g. the CPU lacks an instruction set it uses
    Internal,          // llama.cpp failed in a way the caller could not prevent
};

const char * error_code_name(ErrorCode code);

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string & message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

private:
    ErrorCode code_;
};

}  // namespace ohai
