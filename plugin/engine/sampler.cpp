#include "sampler.h"

#include <cmath>
#include <random>

#include "ohai/error.h"

namespace ohai {

void check_sampling(const SamplingParams & p) {
    auto bad = [](const std::string & why) { throw Error(ErrorCode::InvalidArgument, why); };
    if (!std::isfinite(p.temperature) || p.temperature < 0) bad("temperature must be >= 0");
    if (p.top_k < 0) bad("top_k must be >= 0");
    if (!std::isfinite(p.top_p) || p.top_p <= 0 || p.top_p > 1) bad("top_p must be in (0, 1]");
    if (!std::isfinite(p.min_p) || p.min_p < 0 || p.min_p > 1) bad("min_p must be in [0, 1]");
    if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0) bad("repeat_penalty must be > 0");
    if (p.repeat_last_n < 0) bad("repeat_last_n must be >= 0");
    // llama.cpp reads this value as "choose a random seed": it could never reproduce a run.
    if (p.seed && *p.seed == LLAMA_DEFAULT_SEED) bad("seed must be below 4294967295");
}

llama_sampler_ptr make_sampler(const SamplingParams & p, int32_t n_vocab) {
    check_sampling(p);
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    llama_sampler_ptr chain(llama_sampler_chain_init(cp));
    if (p.repeat_penalty != 1.0f && p.repeat_last_n != 0)
        llama_sampler_chain_add(chain.get(), llama_sampler_init_penalties(n_vocab, p.repeat_last_n, p.repeat_penalty, 0.0f, 0.0f));
    if (p.temperature == 0.0f) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
        return chain;
    }
    // Same order as llama.cpp's common sampling defaults: top-k, top-p, min-p, temperature, draw.
    if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
    if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
    if (p.min_p > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(p.min_p, 1));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
    uint32_t seed = p.seed ? *p.seed : std::random_device{}();
    if (seed == LLAMA_DEFAULT_SEED) seed = 0;
    llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(seed));
    return chain;
}

}  // namespace ohai
