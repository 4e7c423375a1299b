// Runs one generation request to the end on the worker's context.
#pragma once

#include "generation_impl.h"
#include "worker_context.h"

namespace ohai {

// Never throws: the outcome (completion or error) is stored in `gen`.
void run_generation(WorkerContext & wc, Generation::Impl & gen);

}  // namespace ohai
