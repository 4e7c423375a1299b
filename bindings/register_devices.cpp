// Devices: the CPU and NNRt accelerators, the adapter's settings and statistics.
#include "ohai/devices.h"
#include "register.h"

#include <pybind11/stl.h>

namespace ohai::py {

void register_devices(pybind11::module_ & m) {
    namespace py = pybind11;
    m.def("list_devices", [] {
        const DeviceList list = without_gil([] { return list_devices(); });
        py::list devices;
        for (const auto & d : list.devices) {
            py::dict entry;
            entry["name"] = py::bytes(d.name).attr("decode")("utf-8", "replace");
            entry["kind"] = d.kind;
            entry["type"] = d.type;
            entry["description"] = py::bytes(d.description).attr("decode")("utf-8", "replace");
            entry["supported_ops"] = d.supported_ops;
            devices.append(entry);
        }
        py::dict out;
        out["devices"] = devices;
        out["nnrt_status"] = py::bytes(list.nnrt_status).attr("decode")("utf-8", "replace");
        return out;
    }, "The CPU and each NNRt accelerator; nnrt_status says why there is none.");
    m.def("nnrt_stats", [] {
        const NnrtStats s = nnrt_stats();
        py::dict out;
        out["ops_offloaded"] = s.ops_offloaded;
        out["ops_fallback"] = s.ops_fallback;
        out["fallback_reasons"] = s.fallback_reasons;
        out["executors_built"] = s.executors_built;
        out["build_failures"] = s.build_failures;
        out["run_failures"] = s.run_failures;
        out["device_ms"] = s.device_ms;
        out["copy_ms"] = s.copy_ms;
        out["device_disabled"] = s.device_disabled;
        return out;
    }, "What the NNRt adapter did in this process.");
    m.def("set_nnrt_settings", [](uint32_t min_batch, bool dequantize, const std::string & cache_dir) {
        NnrtSettings s;
        s.min_batch = min_batch;
        s.dequantize = dequantize;
        s.cache_dir = cache_dir;
        set_nnrt_settings(s);
    }, py::arg("min_batch"), py::arg("dequantize"), py::arg("cache_dir"));
    m.def("nnrt_settings", [] {
        const NnrtSettings s = nnrt_settings();
        py::dict out;
        out["min_batch"] = s.min_batch;
        out["dequantize"] = s.dequantize;
        out["cache_dir"] = s.cache_dir;
        return out;
    });
}

}  // namespace ohai::py
