#include "backend.h"

#include <mutex>

#include "ggml-backend.h"
#ifdef OHAI_WITH_NNRT
#include "ggml_backend_nnrt.h"
#endif
#include "llama.h"
#include "ohai/error.h"
#include "ohai/log.h"
#include "ohai/system.h"

namespace ohai {

void init_backend() {
    check_cpu_supported();   // before any ggml code runs: an unsupported CPU gets a message, not SIGILL
    install_native_log_hook();
    static std::once_flag once;
    std::call_once(once, [] {
        llama_backend_init();
#ifdef OHAI_WITH_NNRT
        // NNRt joins ggml's registry once, with or without devices; models choose it through
        // llama_model_params.devices (select_devices below), so nothing uses it uninvited.
        ggml_backend_register(nnrt::backend_reg());
#endif
    });
}

#ifndef OHAI_WITH_NNRT
// A build without the adapter (GN: ohai_enable_nnrt = false) answers like a system without NNRt.
namespace nnrt {
ggml_backend_dev_t find_device(const std::string &) { return nullptr; }
std::vector<DeviceInfo> devices() { return {}; }
std::string status() { return "this build has no NNRt adapter"; }
}  // namespace nnrt
#endif

std::vector<ggml_backend_dev_t> select_devices(const std::string & device) {
    init_backend();
    std::vector<ggml_backend_dev_t> list;
    if (device == "cpu") {
        // nothing: the CPU backend is always there
    } else if (device == "auto" || device.empty()) {
        if (ggml_backend_dev_t dev = nnrt::find_device("")) list.push_back(dev);
    } else if (device == "nnrt" || device.rfind("nnrt:", 0) == 0) {
        const std::string name = device == "nnrt" ? std::string() : device.substr(5);
        ggml_backend_dev_t dev = nnrt::find_device(name);
        if (!dev) {
            std::string available;
            for (const auto & d : nnrt::devices()) available += (available.empty() ? "" : ", ") + d.name;
            const std::string why = nnrt::status();
            throw Error(ErrorCode::InvalidArgument,
                        "device \"" + device + "\": " +
                            (name.empty() || available.empty() ? "no NNRt device" + (why.empty() ? "" : " (" + why + ")")
                                                              : "no NNRt device of that name (available: " + available + ")"));
        }
        list.push_back(dev);
    } else {
        throw Error(ErrorCode::InvalidArgument, "device must be \"auto\", \"cpu\", \"nnrt\" or \"nnrt:<name>\"");
    }
    list.push_back(nullptr);   // llama_model_params.devices is NULL-terminated; empty = CPU only
    return list;
}

DeviceList list_devices() {
    init_backend();
    DeviceList out;
    DeviceInfo cpu;
    cpu.name = "CPU";
    cpu.kind = "cpu";
    cpu.type = "cpu";
    if (ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) cpu.description = ggml_backend_dev_description(dev);
    cpu.supported_ops = {"all"};
    out.devices.push_back(cpu);
    for (auto & d : nnrt::devices()) out.devices.push_back(d);
    out.nnrt_status = nnrt::status();
    return out;
}

}  // namespace ohai
