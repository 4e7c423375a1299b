// Builds llama.cpp's sampler chain for a request's sampling parameters.
#pragma once

#include "llama-cpp.h"
#include "ohai/generation.h"

namespace ohai {

// Validates `params` (throws InvalidArgument) and returns a fresh chain.
llama_sampler_ptr make_sampler(const SamplingParams & params, int32_t n_vocab);
void check_sampling(const SamplingParams & params);

}  // namespace ohai
