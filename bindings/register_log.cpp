// Routes native log lines to a Python callable (the `ohai` package hands them to `logging`).
#include "ohai/log.h"
#include "register.h"

#include <pybind11/functional.h>

namespace ohai::py {

void register_log(pybind11::module_ & m) {
    pybind11::enum_<LogLevel>(m, "LogLevel")
        .value("DEBUG", LogLevel::Debug)
        .value("INFO", LogLevel::Info)
        .value("WARN", LogLevel::Warn)
        .value("ERROR", LogLevel::Error)
        .value("NONE", LogLevel::None);

    m.def("set_log_handler", [](pybind11::object handler, LogLevel level) {
        if (handler.is_none()) {
            set_log_handler({}, LogLevel::None);
            return;
        }
        // Hold the callable in a shared_ptr that takes the GIL to release it, whichever thread drops it.
        auto fn = std::shared_ptr<pybind11::object>(new pybind11::object(handler), [](pybind11::object * o) {
            pybind11::gil_scoped_acquire gil;
            delete o;
        });
        set_log_handler([fn](LogLevel lvl, const std::string & line) {
            if (!Py_IsInitialized()) return;
            pybind11::gil_scoped_acquire gil;
            try {
                (*fn)(lvl, pybind11::bytes(line).attr("decode")("utf-8", "replace"));
            } catch (pybind11::error_already_set & e) {
                e.discard_as_unraisable("ohai log handler");
            }
        }, level);
    }, pybind11::arg("handler"), pybind11::arg("level") = LogLevel::Warn,
       "Send native log lines at or above `level` to handler(level, line); None silences them.");
}

}  // namespace ohai::py
