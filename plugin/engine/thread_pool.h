// A persistent ggml CPU thread pool attached to a llama context, as llama.cpp's own tools
// do. Without one, ggml builds a pool for every graph it computes — and, in builds without
// OpenMP (static musl device builds), starts and joins its worker threads each time.
#pragma once

#include <memory>

#include "ggml-cpu.h"
#include "llama.h"

namespace ohai {

struct ThreadPoolDeleter {
    void operator()(ggml_threadpool * pool) const { ggml_threadpool_free(pool); }
};
using ThreadPoolPtr = std::unique_ptr<ggml_threadpool, ThreadPoolDeleter>;

// Creates a pool of `n_threads` and attaches it to `ctx` for both prompt and generation.
// The pool must outlive the context: declare it before the context that uses it.
ThreadPoolPtr attach_thread_pool(llama_context * ctx, int32_t n_threads);

}  // namespace ohai
