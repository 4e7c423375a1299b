// ohai — one logging callback for the engine, llama.cpp and ggml.
#pragma once

#include <functional>
#include <string>

namespace ohai {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, None = 4 };

// Receives whole lines (without the trailing newline). Called from whichever
// thread logs, never while an engine lock is held.
using LogHandler = std::function<void(LogLevel level, const std::string & line)>;

// Installs `handler` (empty = drop everything) and the lowest level passed to it.
// The default is quiet: no handler, level None.
void set_log_handler(LogHandler handler, LogLevel min_level);

// Sends one line of the engine's own through the same handler (level filter applies).
void log_message(LogLevel level, const std::string & line);

// The first error line llama.cpp logged on the calling thread since the previous call
// (which clears it); used to make load failures say why.
std::string take_last_native_error();

// Routes llama.cpp/ggml logging through ohai; idempotent.
void install_native_log_hook();

}  // namespace ohai
