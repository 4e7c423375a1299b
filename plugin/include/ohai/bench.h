// ohai — throughput measurement in llama-bench's shape (pp = prompt, tg = generation).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "ohai/model.h"

namespace ohai {

struct BenchParams {
    int32_t n_prompt  = 512;   // 0 = skip the pp test
    int32_t n_gen     = 128;   // 0 = skip the tg test
    int32_t repetitions = 3;
    int32_t n_threads = 0;     // 0 = all hardware threads
    const std::atomic<bool> * cancel = nullptr;   // optional, borrowed: set to stop early (Error Cancelled)
};

struct BenchResult {
    std::string test;          // "pp512", "tg128"
    int32_t n_prompt = 0;
    int32_t n_gen = 0;
    int32_t n_threads = 0;
    std::vector<double> samples_ts;   // tokens per second, one per repetition
    double avg_ts = 0;
    double stddev_ts = 0;
};

// Runs on a context of its own, sized like llama-bench's (n_prompt + n_gen), after one warm-up.
std::vector<BenchResult> run_bench(const Model & model, const BenchParams & params);

}  // namespace ohai
