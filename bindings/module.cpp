// ohai._core: the native engine, registered one concept per file.
#include "register.h"

PYBIND11_MODULE(_core, m) {
    m.doc() = "ohai native engine (llama.cpp inside, statically linked)";
    ohai::py::register_errors(m);
    ohai::py::register_log(m);
    ohai::py::register_model(m);
    ohai::py::register_generation(m);
    ohai::py::register_engine(m);
    ohai::py::register_chat(m);
    ohai::py::register_quantize(m);
    ohai::py::register_bench(m);
    ohai::py::register_system(m);
    ohai::py::register_devices(m);
}
