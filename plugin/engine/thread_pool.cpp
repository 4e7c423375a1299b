#include "thread_pool.h"

#include "ohai/error.h"

namespace ohai {

ThreadPoolPtr attach_thread_pool(llama_context * ctx, int32_t n_threads) {
    ggml_threadpool_params params = ggml_threadpool_params_default(n_threads);
    ThreadPoolPtr pool(ggml_threadpool_new(&params));
    if (!pool) throw Error(ErrorCode::Internal, "failed to create a CPU thread pool of " + std::to_string(n_threads));
    llama_attach_threadpool(ctx, pool.get(), nullptr);
    return pool;
}

}  // namespace ohai
