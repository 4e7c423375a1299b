#include "ohai/bench.h"

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "llama-cpp.h"
#include "ohai/error.h"
#include "ohai/log.h"
#include "thread_pool.h"

namespace ohai {
namespace {

// Same shape as llama-bench: random tokens, one context per test sized n_prompt + n_gen,
// n_batch 2048 / n_ubatch 512, a warm-up run first, memory cleared before each repetition.
struct BenchContext {
    ThreadPoolPtr pool;
    llama_context_ptr ctx;
    int32_t n_vocab;
    std::mt19937 rng{1234};

    llama_token random_token() { return static_cast<llama_token>(rng() % static_cast<uint32_t>(n_vocab)); }

    void decode(std::vector<llama_token> & tokens, llama_pos pos0) {
        llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
        for (size_t i = 0; i < tokens.size(); ++i) {
            batch.token[i] = tokens[i];
            batch.pos[i] = pos0 + static_cast<llama_pos>(i);
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = i + 1 == tokens.size();
        }
        batch.n_tokens = static_cast<int32_t>(tokens.size());
        const int rc = llama_decode(ctx.get(), batch);
        llama_batch_free(batch);
        if (rc == 2) throw Error(ErrorCode::Cancelled, "the benchmark was cancelled");
        if (rc != 0) throw Error(ErrorCode::Internal, "llama_decode failed during the benchmark");
    }

    void prompt(int32_t n, int32_t n_batch) {
        for (int32_t done = 0; done < n; done += n_batch) {
            std::vector<llama_token> tokens(static_cast<size_t>(std::min(n_batch, n - done)));
            for (auto & t : tokens) t = random_token();
            decode(tokens, done);
        }
        llama_synchronize(ctx.get());
    }

    void generate(int32_t n) {
        for (int32_t i = 0; i < n; ++i) {
            std::vector<llama_token> one{random_token()};
            decode(one, i);
            llama_synchronize(ctx.get());
        }
    }
};

bool abort_requested(void * data) {
    const auto * cancel = static_cast<const std::atomic<bool> *>(data);
    return cancel != nullptr && cancel->load();
}

BenchResult run_test(const Model & model, int32_t n_prompt, int32_t n_gen, int32_t reps, int32_t n_threads,
                     const std::atomic<bool> * cancel) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(n_prompt + n_gen);
    cp.n_batch = 2048;
    cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = n_threads;
    cp.no_perf = true;
    cp.abort_callback = abort_requested;
    cp.abort_callback_data = const_cast<std::atomic<bool> *>(cancel);
    BenchContext bc{nullptr, llama_context_ptr(llama_init_from_model(model.handle(), cp)), model.info().n_vocab};
    if (!bc.ctx) throw Error(ErrorCode::Internal, "failed to create the benchmark context");
    bc.pool = attach_thread_pool(bc.ctx.get(), n_threads);
    llama_memory_t mem = llama_get_memory(bc.ctx.get());

    if (n_prompt > 0) bc.prompt(std::min<int32_t>(n_prompt, 2048), 2048);
    if (n_gen > 0) bc.generate(1);

    BenchResult r;
    r.test = n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
    r.n_prompt = n_prompt;
    r.n_gen = n_gen;
    r.n_threads = n_threads;
    for (int32_t rep = 0; rep < reps; ++rep) {
        llama_memory_clear(mem, false);
        const auto t0 = std::chrono::steady_clock::now();
        if (n_prompt > 0) bc.prompt(n_prompt, 2048);
        if (n_gen > 0) bc.generate(n_gen);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.samples_ts.push_back((n_prompt + n_gen) / s);
    }
    double sum = 0;
    for (double x : r.samples_ts) sum += x;
    r.avg_ts = sum / reps;
    double var = 0;
    for (double x : r.samples_ts) var += (x - r.avg_ts) * (x - r.avg_ts);
    r.stddev_ts = reps > 1 ? std::sqrt(var / (reps - 1)) : 0.0;
    return r;
}

}  // namespace

std::vector<BenchResult> run_bench(const Model & model, const BenchParams & params) {
    if (model.vocab_only()) throw Error(ErrorCode::InvalidState, "cannot benchmark a vocab-only model");
    if (params.n_prompt < 0 || params.n_gen < 0 || params.n_prompt > 65536 || params.n_gen > 65536)
        throw Error(ErrorCode::InvalidArgument, "n_prompt and n_gen must be in [0, 65536]");
    if (params.repetitions < 1 || params.repetitions > 1000) throw Error(ErrorCode::InvalidArgument, "repetitions must be in [1, 1000]");
    if (params.n_threads < 0 || params.n_threads > 512) throw Error(ErrorCode::InvalidArgument, "threads must be in [0, 512]");
    // Beyond the training context llama.cpp runs, but slowly and meaninglessly (and a 64k-token
    // prompt takes ten minutes on a small board): refuse it up front.
    const int64_t n_ctx_train = model.info().n_ctx_train;
    if (n_ctx_train > 0 && static_cast<int64_t>(params.n_prompt) + params.n_gen > n_ctx_train)
        throw Error(ErrorCode::InvalidArgument, "n_prompt + n_gen (" + std::to_string(params.n_prompt + params.n_gen) +
                                                ") exceeds the model's context of " + std::to_string(n_ctx_train) + " tokens");
    int32_t n_threads = params.n_threads;
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<BenchResult> results;
    if (params.n_prompt > 0)
        results.push_back(run_test(model, params.n_prompt, 0, params.repetitions, n_threads, params.cancel));
    if (params.n_gen > 0) results.push_back(run_test(model, 0, params.n_gen, params.repetitions, n_threads, params.cancel));
    return results;
}

}  // namespace ohai
