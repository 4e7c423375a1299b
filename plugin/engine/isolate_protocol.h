// How ohai-isolate (plugin/cli/isolate_main.cpp) talks to the engine that started it: progress
// as stdout lines, an ohai::Error as "ohai-isolate: error: <message>" on stderr plus an exit code
// that carries its ErrorCode, anything else (a signal) as a crash.
#pragma once

#include <string>

#include "ohai/error.h"

namespace ohai::isolate {

constexpr const char * kProgressPrefix = "progress ";   // "progress <done> <total>"
constexpr const char * kPartialPrefix = "partial ";     // "partial <path>": the file to remove if the child dies
constexpr const char * kErrorPrefix = "ohai-isolate: error: ";
constexpr int kErrorExitBase = 10;                     // exit code = base + ErrorCode

inline int exit_code_for(ErrorCode code) { return kErrorExitBase + static_cast<int>(code); }

inline bool code_from_exit(int exit_code, ErrorCode & code) {
    const int v = exit_code - kErrorExitBase;
    if (v < 0 || v > static_cast<int>(ErrorCode::Internal)) return false;
    code = static_cast<ErrorCode>(v);
    return true;
}

// The child's own message from its last stderr line, without the prefix ("" when absent).
inline std::string child_message(const std::string & last_line) {
    const std::string prefix = kErrorPrefix;
    return last_line.rfind(prefix, 0) == 0 ? last_line.substr(prefix.size()) : std::string();
}

}  // namespace ohai::isolate
