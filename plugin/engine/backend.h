// The one place that brings ggml and llama.cpp up, once per process.
#pragma once

namespace ohai {

// Checks that this CPU can run the build (throws Error(Unsupported) otherwise), routes
// llama.cpp/ggml logging through ohai, and initialises llama.cpp's backends. Idempotent and
// thread-safe; call it before anything that may run a ggml kernel.
void init_backend();

}  // namespace ohai
