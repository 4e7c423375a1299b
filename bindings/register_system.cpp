// What this build runs on: CPU instruction sets built in and supported, llama.cpp's summary.
#include "ohai/system.h"
#include "register.h"

#include <pybind11/stl.h>

namespace ohai::py {

void register_system(pybind11::module_ & m) {
    namespace py = pybind11;
    m.def("system_info", [] {
        const SystemInfo info = system_info();
        py::dict features;
        for (const auto & f : info.features) {
            py::dict entry;
            entry["built"] = f.built;
            entry["supported"] = f.supported;
            entry["used"] = f.built && f.supported;
            features[py::str(f.name)] = entry;
        }
        py::dict out;
        out["cpu_target"] = info.cpu_target;
        out["amx_enabled"] = info.amx_enabled;
        out["cpu_model"] = py::bytes(info.cpu_model).attr("decode")("utf-8", "replace");
        out["features"] = features;
        out["missing"] = info.missing;
        out["llama_system_info"] = info.llama_system_info;
        return out;
    }, "The CPU instruction sets this build uses, what this CPU supports, and llama.cpp's summary.");
}

}  // namespace ohai::py
