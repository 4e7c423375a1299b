// The one place that brings ggml and llama.cpp up, once per process.
#pragma once

#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ohai/devices.h"

namespace ohai {

// Checks that this CPU can run the build (throws Error(Unsupported) otherwise), routes
// llama.cpp/ggml logging through ohai, and initialises llama.cpp's backends. Idempotent and
// thread-safe; call it before anything that may run a ggml kernel.
void init_backend();

// The devices a model with `device` = "auto" | "cpu" | "nnrt" | "nnrt:<name>" computes on, as
// llama_model_params.devices wants them (NULL-terminated; empty = the CPU only). "auto" takes the
// first NNRt accelerator when there is one; "nnrt" without one throws Error(InvalidArgument).
std::vector<ggml_backend_dev_t> select_devices(const std::string & device);

}  // namespace ohai
