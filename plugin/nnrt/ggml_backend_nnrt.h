// ohai — the NNRt ggml backend (registry → devices → backend), see ggml_backend_nnrt.cpp.
#pragma once

#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ohai/devices.h"

namespace ohai::nnrt {

// The registry to hand to ggml_backend_register (once). Loads NNRt and lists its accelerators on
// first use; without NNRt it has no devices.
ggml_backend_reg_t backend_reg();
// Why there is no NNRt device ("" when there is one).
std::string status();
std::vector<DeviceInfo> devices();
// The device called `name`, or the first one when `name` is empty; null when there is none.
ggml_backend_dev_t find_device(const std::string & name);

}  // namespace ohai::nnrt
