// Runs a helper executable in a child process and watches it: its stdout lines are handed to
// the caller as they come, the tail of its stderr is kept for error messages, and it can be
// stopped (cancel, timeout). Used to do work that might crash (a first decode of an unknown
// model file) or that cannot be interrupted in-process (llama.cpp's quantizer) where it cannot
// take the caller's process down.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ohai {

struct ChildParams {
    std::vector<std::string> argv;                  // argv[0] is the executable's path
    std::chrono::milliseconds timeout{0};           // 0 = none
    const std::atomic<bool> * cancel = nullptr;     // borrowed; set to stop the child
    std::function<void(const std::string &)> on_stdout_line;   // called on the caller's thread
};

struct ChildResult {
    bool started = false;      // false: the executable could not be run (see `error`)
    int exit_code = -1;        // when it exited normally
    int signal = 0;            // when a signal ended it (after a cancel or timeout too)
    bool timed_out = false;
    bool cancelled = false;
    std::string error;         // why it could not start
    std::string stderr_tail;   // the last few KiB it wrote on stderr

    bool ok() const { return started && signal == 0 && exit_code == 0; }
    // One line for messages: "exit code 2", "SIGABRT", "timed out after 120 s", ...
    std::string describe() const;
    // The last non-empty line of stderr (the child's own explanation), or "".
    std::string last_stderr_line() const;
};

// Starts argv[0] (posix_spawn: safe from a multi-threaded process), waits for it to end and
// returns how it ended. A cancel or timeout sends SIGTERM, then SIGKILL after a grace period.
ChildResult run_child(const ChildParams & params);

}  // namespace ohai
