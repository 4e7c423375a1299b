#include "fork_guard.h"

#include <pthread.h>

#include <atomic>
#include <mutex>

namespace ohai {
namespace {

std::atomic<uint64_t> g_generation{0};

// Runs in the child right after fork(), with one thread: only async-signal-safe work here.
void on_fork_child() { g_generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

uint64_t process_generation() {
    // Registered on first use, which is before any engine exists: forks before that need no count.
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, on_fork_child); });
    return g_generation.load(std::memory_order_relaxed);
}

}  // namespace ohai
