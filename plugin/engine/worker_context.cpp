#include "worker_context.h"

#include <algorithm>
#include <thread>

#include "ohai/error.h"
#include "ohai/log.h"

namespace ohai {
namespace {

int32_t resolve_threads(int32_t n) {
    if (n > 0) return n;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? static_cast<int32_t>(hw) : 4;
}

bool abort_if_cancelled(void * data) {
    const auto * flag = static_cast<WorkerContext *>(data)->cancel_flag.load();
    return flag != nullptr && flag->load();
}

ggml_type ggml_kv_type(KvType t) {
    switch (t) {
        case KvType::Q8_0: return GGML_TYPE_Q8_0;
        case KvType::Q4_0: return GGML_TYPE_Q4_0;
        case KvType::F16:  break;
    }
    return GGML_TYPE_F16;
}

// One sequence; the generation context widens it (see WorkerContext's constructor).
llama_context_params base_params(const EngineParams & p, uint32_t n_ctx, WorkerContext * self) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = std::min(p.n_batch, n_ctx);
    cp.n_ubatch = std::min<uint32_t>(512, cp.n_batch);
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = resolve_threads(p.n_threads);
    cp.no_perf = true;
    cp.abort_callback = abort_if_cancelled;
    cp.abort_callback_data = self;
    return cp;
}

}  // namespace

WorkerContext::WorkerContext(std::shared_ptr<Model> m, const EngineParams & p, uint32_t n)
    : model(std::move(m)), params(p), n_ctx(n) {
    take_last_native_error();
    llama_context_params cp = base_params(params, n_ctx, this);
    // All sequences share one cache (any of them may grow to n_ctx; the scheduler accounts).
    cp.n_seq_max = params.n_parallel;
    cp.kv_unified = true;
    cp.type_k = cp.type_v = ggml_kv_type(params.kv_type);
    ctx.reset(llama_init_from_model(model->handle(), cp));
    if (!ctx) {
        std::string why = take_last_native_error();
        throw Error(ErrorCode::Internal, "failed to create a context of " + std::to_string(n_ctx) + " tokens" +
                                         (why.empty() ? "" : ": " + why));
    }
    pool = attach_thread_pool(ctx.get(), llama_n_threads(ctx.get()));
}

llama_context * WorkerContext::embedding_context(uint32_t n_tokens) {
    // A pooled sequence must fit one micro-batch, and the micro-batch sets the size of the
    // compute buffers: size the context to the longest text seen, not to the whole context.
    const uint32_t needed = std::min(n_ctx, (std::max<uint32_t>(n_tokens, 1) + 255) / 256 * 256);
    if (!embed_ctx || needed > embed_capacity) {
        embed_ctx.reset();
        llama_context_params cp = base_params(params, needed, this);
        cp.embeddings = true;
        // Causal LMs declare no pooling; mean pooling over the sequence is the usual choice for them.
        cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
        cp.n_batch = cp.n_ubatch = needed;
        embed_capacity = needed;
        take_last_native_error();
        embed_ctx.reset(llama_init_from_model(model->handle(), cp));
        if (!embed_ctx) {
            std::string why = take_last_native_error();
            throw Error(ErrorCode::Internal, "failed to create the embedding context" + (why.empty() ? "" : ": " + why));
        }
        llama_attach_threadpool(embed_ctx.get(), pool.get(), nullptr);
    }
    return embed_ctx.get();
}

llama_context * WorkerContext::logits_context(uint32_t n_tokens) {
    const uint32_t needed = std::min(n_ctx, (std::max<uint32_t>(n_tokens, 1) + 255) / 256 * 256);
    if (!logits_ctx || needed > logits_capacity) {
        logits_ctx.reset();
        logits_capacity = needed;
        take_last_native_error();
        logits_ctx.reset(llama_init_from_model(model->handle(), base_params(params, needed, this)));
        if (!logits_ctx) {
            std::string why = take_last_native_error();
            throw Error(ErrorCode::Internal, "failed to create the logits context" + (why.empty() ? "" : ": " + why));
        }
        llama_attach_threadpool(logits_ctx.get(), pool.get(), nullptr);
    }
    llama_memory_clear(llama_get_memory(logits_ctx.get()), true);
    return logits_ctx.get();
}

int WorkerContext::decode(llama_context * c, const std::vector<Token> & tokens, size_t begin, size_t end, bool all_logits) {
    const size_t n_batch = std::min<size_t>(llama_n_batch(c), end - begin);
    if (n_batch == 0) return 0;
    llama_batch batch = llama_batch_init(static_cast<int32_t>(n_batch), 0, 1);
    int rc = 0;
    for (size_t start = begin; start < end && rc == 0; start += n_batch) {
        const size_t stop = std::min(end, start + n_batch);
        batch.n_tokens = 0;
        for (size_t i = start; i < stop; ++i) {
            const int32_t k = batch.n_tokens++;
            batch.token[k] = tokens[i];
            batch.pos[k] = static_cast<llama_pos>(i);
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = 0;
            batch.logits[k] = all_logits || i + 1 == end;
        }
        rc = llama_decode(c, batch);
    }
    llama_batch_free(batch);
    return rc;
}

}  // namespace ohai
