// fork() and the engine. A child forked from a process with engines inherits their memory but
// none of their threads (the worker, ggml's thread pools), and possibly mutexes that a parent
// thread held at the moment of the fork. An engine created before the fork therefore cannot
// serve the child, and must not even be cleaned up there.
#pragma once

#include <cstdint>

namespace ohai {

// Which process this is in a line of forks: 0 in the process that first called this, one more
// in each child forked after that (a pthread_atfork child handler counts them). Comparing the
// value saved at creation tells an object whether it still lives in the process that made it.
uint64_t process_generation();

}  // namespace ohai
