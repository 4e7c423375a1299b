// The part of quantization that runs inside the ohai-isolate child (quantize.cpp has both sides).
#pragma once

#include <functional>
#include <string>

#include "ohai/quantize.h"

namespace ohai {

// Checks the request (type, destination, source); throws Error. Run by both processes: the
// caller fails fast, the child never trusts its arguments.
void check_quantize_request(const std::string & src, const std::string & dst, const std::string & type,
                            bool overwrite);

// Quantizes in this process: writes a new file next to `dst` (reported through `on_partial`
// before any byte is written, so a signal handler can remove it), then moves it into place.
void quantize_in_this_process(const std::string & src, const std::string & dst, const std::string & type,
                              const QuantizeParams & params, const QuantizeProgress & progress,
                              const std::function<void(const std::string &)> & on_partial);

}  // namespace ohai
