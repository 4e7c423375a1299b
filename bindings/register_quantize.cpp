// Quantization through llama.cpp's quantizer, with progress reported to a Python callable.
#include "ohai/quantize.h"
#include "register.h"

#include <pybind11/stl.h>

namespace ohai::py {

void register_quantize(pybind11::module_ & m) {
    namespace py = pybind11;
    m.def("quantize_types", &quantize_type_names);
    m.def("quantize",
          [](const std::string & src, const std::string & dst, const std::string & type, int32_t threads,
             py::object progress) {
              QuantizeParams p;
              p.n_threads = threads;
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
              py::gil_scoped_release release;
              quantize(src, dst, type, p, cb);
          },
          py::arg("src"), py::arg("dst"), py::arg("type"), py::arg("threads") = 0, py::arg("progress") = py::none());
}

}  // namespace ohai::py
