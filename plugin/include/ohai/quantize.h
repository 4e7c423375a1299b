// ohai — writing a GGUF at another type through llama.cpp's quantizer.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ohai {

struct QuantizeParams {
    int32_t n_threads = 0;   // 0 = all hardware threads
    bool allow_requantize = true;
};

// Called with (tensors done, tensors total) as the quantizer goes.
using QuantizeProgress = std::function<void(int done, int total)>;

// Names accepted by quantize(): "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M", "F16", ...
std::vector<std::string> quantize_type_names();

// Reads `src` (validated first), writes `dst`. Throws InvalidArgument on an unknown type,
// ModelLoad on a bad source, Internal when llama.cpp fails.
void quantize(const std::string & src, const std::string & dst, const std::string & type,
              const QuantizeParams & params = {}, const QuantizeProgress & progress = {});

}  // namespace ohai
