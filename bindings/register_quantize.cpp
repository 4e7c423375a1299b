// Quantization through llama.cpp's quantizer (in the ohai-isolate child process), with progress
// reported to a Python callable and Ctrl-C stopping it.
#include "ohai/quantize.h"
#include "register.h"

#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <future>

namespace ohai::py {

void register_quantize(pybind11::module_ & m) {
    namespace py = pybind11;
    m.def("quantize_types", &quantize_type_names);
    m.def("quantize",
          [](const std::string & src, const std::string & dst, const std::string & type, int32_t threads,
             py::object progress, bool overwrite) {
              std::atomic<bool> cancel{false};
              QuantizeParams p;
              p.n_threads = threads;
              p.overwrite = overwrite;
              p.cancel = &cancel;
              QuantizeProgress cb;
              if (!progress.is_none()) {
                  cb = [progress](int done, int total) {
                      py::gil_scoped_acquire gil;
                      try {
                          progress(done, total);
                      } catch (py::error_already_set & e) {
                          e.discard_as_unraisable("ohai quantize progress");
                      }
                  };
              }
              // The child is watched from a thread of its own so that this one can notice Ctrl-C.
              auto job = std::async(std::launch::async, [&] { quantize(src, dst, type, p, cb); });
              wait_interruptibly([&] { return job.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready; },
                                 [&] {
                                     cancel = true;
                                     without_gil([&] { job.wait(); });   // progress callbacks need the GIL
                                 });
              without_gil([&] { job.get(); });
          },
          py::arg("src"), py::arg("dst"), py::arg("type"), py::arg("threads") = 0, py::arg("progress") = py::none(),
          py::arg("overwrite") = false);
}

}  // namespace ohai::py
