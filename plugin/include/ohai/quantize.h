// ohai — writing a GGUF at another type through llama.cpp's quantizer.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace ohai {

struct QuantizeParams {
    int32_t n_threads = 0;   // 0 = all hardware threads
    bool allow_requantize = true;
    bool overwrite = false;  // replace an existing regular file at dst (never a FIFO, device, directory...)
    const std::atomic<bool> * cancel = nullptr;   // optional, borrowed: set to stop (Error Cancelled)
};

// Called with (tensors done, tensors total) as the quantizer goes.
using QuantizeProgress = std::function<void(int done, int total)>;

// Names accepted by quantize(): "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M", "F16", ...
std::vector<std::string> quantize_type_names();

// Reads `src` (validated first), writes `dst` with the mode a new file gets (0666 & ~umask).
// The work runs in the ohai-isolate child process (see isolation.h), so it can be cancelled and
// is cleaned up when stopped or killed: `dst` is either the complete new file or untouched.
// Throws InvalidArgument on an unknown type or a bad destination (exists without `overwrite`,
// not a regular file, same as src), ModelLoad on a bad source (including one without tensors),
// Cancelled, or Internal when llama.cpp fails.
void quantize(const std::string & src, const std::string & dst, const std::string & type,
              const QuantizeParams & params = {}, const QuantizeProgress & progress = {});

}  // namespace ohai
