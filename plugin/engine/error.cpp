#include "ohai/error.h"

namespace ohai {

const char * error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument: return "invalid_argument";
        case ErrorCode::ModelLoad:       return "model_load";
        case ErrorCode::ContextOverflow: return "context_overflow";
        case ErrorCode::InvalidState:    return "invalid_state";
        case ErrorCode::Cancelled:       return "cancelled";
        case ErrorCode::Overloaded:      return "overloaded";
        case ErrorCode::Unsupported:     return "unsupported";
        case ErrorCode::Internal:        return "internal";
    }
    return "unknown";
}

}  // namespace ohai
