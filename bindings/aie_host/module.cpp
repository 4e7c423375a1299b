// ohai._aie_host: the ai_engine plugin host (plugin/aie/host) for Python; ohai.aie wraps it.
//
// A module of its own rather than part of _core: it holds no engine, and the library that holds
// the host is promoted to RTLD_GLOBAL (plugins resolve the data channel from it), which _core,
// with llama.cpp inside, must never be.
//
// Every call that may reach the plugin runs without the GIL (the plugin may take long, and its
// own threads never need Python); waits for a reply run in slices, so Ctrl-C ends them.
#include "data_channel.h"   // before any aie/ header: see there
#include "aie/plugin.h"
#include "aie/retcode.h"
#include "plugin_host.h"
#include "register.h"

#include <pybind11/stl.h>

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace py = pybind11;
using ohai::aie::CallResult;
using ohai::aie::PendingCall;
using ohai::aie::PluginHost;
using ohai::aie::ProcessResult;

// Interpreter-exit hooks of this module (same contract as _core's; see bindings/register.h): the
// exit state lives once per extension module, so ohai.aie calls these from its own atexit handler.
namespace ohai::py {

void begin_interpreter_exit() { exit_state::exiting_thread = PyThread_get_thread_ident(); }

void wait_for_native_calls(std::chrono::milliseconds timeout) {
    PyThreadState * state = PyEval_SaveThread();   // not without_gil(): must neither count nor park
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (exit_state::native_calls.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    PyEval_RestoreThread(state);
}

}  // namespace ohai::py

namespace {

PyObject * g_load_error = nullptr;

// Text that comes from a plugin or the file system: never let odd bytes become a
// UnicodeDecodeError.
py::str text(const std::string & s) {
    PyObject * out = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
    if (out == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(out);
}

// Waits for `call` in 50 ms slices (Ctrl-C between slices abandons it and raises
// KeyboardInterrupt) until its result is there or `timeout` seconds have passed (None or inf:
// no limit), then returns the result (a timeout is reported by the host as 1300 / 1301).
ProcessResult wait_for_result(PluginHost & host, PendingCall & call, std::optional<double> timeout) {
    using clock = std::chrono::steady_clock;
    const bool bounded = timeout.has_value() && std::isfinite(*timeout) && *timeout < 1e9;
    clock::time_point deadline = clock::time_point::max();
    if (bounded) {
        const double seconds = std::max(0.0, *timeout);
        deadline = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
    }
    ohai::py::wait_interruptibly([&] {
        std::chrono::milliseconds slice(50);
        if (bounded) {
            const auto left = deadline - clock::now();
            if (left <= clock::duration::zero()) return true;
            slice = std::min(slice, std::chrono::ceil<std::chrono::milliseconds>(left));
        }
        return host.wait(call, slice);
    }, [&] { (void)host.finish(call); });
    return host.finish(call);
}

}  // namespace

PYBIND11_MODULE(_aie_host, m) {
    using ohai::py::without_gil;
    m.doc() = "ai_engine plugin host: loads a plugin library and calls it as ai_engine's server does";

    ohai::py::exit_state::main_thread =
        py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, [] { ohai::py::exit_state::native_calls = 0; }); });

    g_load_error = PyErr_NewExceptionWithDoc(
        "ohai._aie_host.LoadError",
        "The plugin library could not be loaded; args are (retcode, message): 1200 SO_LACK_SYMBOL, "
        "1201 PLUGIN_LOAD_FAILED, 1202 OPEN_SO_FAILED.",
        PyExc_Exception, nullptr);
    if (g_load_error == nullptr) throw py::error_already_set();
    m.attr("LoadError") = py::handle(g_load_error);
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ohai::aie::LoadError & e) {
            py::tuple args = py::make_tuple(e.retcode(), text(e.what()));
            PyErr_SetObject(g_load_error, args.ptr());
        }
    });

    m.attr("MAX_MESSAGE_BYTES") = ohai::aie::kMaxMessageBytes;
    m.attr("ON_PLUGIN_SUCCEED") = static_cast<int>(OHOS::AI::ON_PLUGIN_SUCCEED);
    m.attr("ON_PLUGIN_FAIL") = static_cast<int>(OHOS::AI::ON_PLUGIN_FAIL);
    py::dict retcodes;
    for (const auto & [name, value] : std::initializer_list<std::pair<const char *, int>>{
             {"SUCCESS", OHOS::AI::RETCODE_SUCCESS},
             {"FAILURE", OHOS::AI::RETCODE_FAILURE},
             {"OUT_OF_MEMORY", OHOS::AI::RETCODE_OUT_OF_MEMORY},
             {"NULL_PARAM", OHOS::AI::RETCODE_NULL_PARAM},
             {"INVALID_PARAM", OHOS::AI::RETCODE_INVALID_PARAM},
             {"SO_LACK_SYMBOL", OHOS::AI::RETCODE_SO_LACK_SYMBOL},
             {"PLUGIN_LOAD_FAILED", OHOS::AI::RETCODE_PLUGIN_LOAD_FAILED},
             {"OPEN_SO_FAILED", OHOS::AI::RETCODE_OPEN_SO_FAILED},
             {"WRONG_INFER_MODE", OHOS::AI::RETCODE_WRONG_INFER_MODE},
             {"ASYNC_CB_STARTED", OHOS::AI::RETCODE_ASYNC_CB_STARTED},
             {"SYNC_MSG_TIMEOUT", OHOS::AI::RETCODE_SYNC_MSG_TIMEOUT},
             {"ASYNC_MSG_TIMEOUT", OHOS::AI::RETCODE_ASYNC_MSG_TIMEOUT},
             {"QUEUE_FULL", OHOS::AI::RETCODE_QUEUE_FULL},
             {"ALGORITHM_PROCESS_ERROR", OHOS::AI::RETCODE_ALGORITHM_PROCESS_ERROR},
         }) {
        retcodes[name] = value;
    }
    m.attr("RETCODES") = retcodes;

    m.def("make_transaction_id", &ohai::aie::make_transaction_id, py::arg("adapter_id"), py::arg("session_id"),
          "ai_engine's transaction id: (adapter_id << 32) + session_id.");

    py::class_<CallResult>(m, "CallResult")
        .def_readonly("retcode", &CallResult::retcode)
        .def_property_readonly("output", [](const CallResult & r) { return py::bytes(r.output); })
        .def_property_readonly("host_error", [](const CallResult & r) { return text(r.host_error); })
        .def("__repr__", [](const CallResult & r) {
            return "CallResult(retcode=" + std::to_string(r.retcode) + ", " + std::to_string(r.output.size()) + " bytes)";
        });

    py::class_<ProcessResult>(m, "ProcessResult")
        .def_readonly("retcode", &ProcessResult::retcode)
        .def_readonly("event", &ProcessResult::event)
        .def_readonly("response_retcode", &ProcessResult::response_retcode)
        .def_property_readonly("response_desc", [](const ProcessResult & r) { return text(r.response_desc); })
        .def_property_readonly("result", [](const ProcessResult & r) { return py::bytes(r.result); })
        .def_property_readonly("host_error", [](const ProcessResult & r) { return text(r.host_error); })
        .def_readonly("request_id", &ProcessResult::request_id)
        .def("__repr__", [](const ProcessResult & r) {
            return "ProcessResult(retcode=" + std::to_string(r.retcode) + ", event=" + std::to_string(r.event) +
                   ", response_retcode=" + std::to_string(r.response_retcode) + ", " + std::to_string(r.result.size()) +
                   " bytes)";
        });

    py::class_<PluginHost, std::shared_ptr<PluginHost>>(m, "PluginHost")
        .def(py::init([](const std::string & library_path, int plugin_type) {
                 return without_gil([&] {
                     // Destroying the host closes the plugin, which waits for calls inside it and
                     // joins the plugin's threads: never with the GIL held.
                     return std::shared_ptr<PluginHost>(new PluginHost(library_path, plugin_type), [](PluginHost * h) {
                         if (PyGILState_Check()) {
                             without_gil([h] { delete h; });
                         } else {
                             delete h;
                         }
                     });
                 });
             }),
             py::arg("library_path"), py::arg("plugin_type") = 0,
             "dlopen()s the library (bytes: the file name as is), finds PLUGIN_INTERFACE and creates the plugin; "
             "raises LoadError((retcode, message)).")
        .def_property_readonly("library_path", [](const PluginHost & h) { return text(h.library_path()); })
        .def_property_readonly("name", [](const PluginHost & h) { return text(h.name()); })
        .def_property_readonly("version", &PluginHost::version)
        .def_property_readonly("infer_mode", [](const PluginHost & h) { return text(h.infer_mode()); })
        .def_property_readonly("is_sync", &PluginHost::is_sync)
        .def_property_readonly("adapter_id", &PluginHost::adapter_id)
        .def("new_transaction_id", &PluginHost::new_transaction_id,
             "(adapter_id << 32) + the next session id of this host.")
        .def("prepare", [](PluginHost & h, long long transaction_id, const py::bytes & input) {
                 std::string in = input;
                 return without_gil([&] { return h.prepare(transaction_id, in); });
             },
             py::arg("transaction_id"), py::arg("input"))
        .def("release", [](PluginHost & h, bool full_unload, long long transaction_id, const py::bytes & input) {
                 std::string in = input;
                 return without_gil([&] { return h.release(full_unload, transaction_id, in); });
             },
             py::arg("full_unload"), py::arg("transaction_id"), py::arg("input"))
        .def("set_option", [](PluginHost & h, int option_type, const py::bytes & input) {
                 std::string in = input;
                 return without_gil([&] { return h.set_option(option_type, in); });
             },
             py::arg("option_type"), py::arg("input"))
        .def("get_option", [](PluginHost & h, int option_type, const py::bytes & input) {
                 std::string in = input;
                 return without_gil([&] { return h.get_option(option_type, in); });
             },
             py::arg("option_type"), py::arg("input"))
        .def("process_sync", [](PluginHost & h, long long transaction_id, const py::bytes & message,
                                std::optional<double> timeout, int operation_id) {
                 std::string msg = message;
                 PendingCall call = without_gil([&] { return h.start_sync(transaction_id, msg, operation_id); });
                 return wait_for_result(h, call, timeout);
             },
             py::arg("transaction_id"), py::arg("message"), py::arg("timeout") = py::none(), py::arg("operation_id") = 0,
             "SyncProcess (on a thread of the host, so that the wait can end: timeout gives 1300, Ctrl-C "
             "KeyboardInterrupt; the plugin call itself still runs to its end).")
        .def("process_async", [](PluginHost & h, long long transaction_id, const py::bytes & message,
                                 std::optional<double> timeout, int operation_id) {
                 std::string msg = message;
                 PendingCall call = without_gil([&] { return h.start_async(transaction_id, msg, operation_id); });
                 return wait_for_result(h, call, timeout);
             },
             py::arg("transaction_id"), py::arg("message"), py::arg("timeout") = 60.0, py::arg("operation_id") = 0,
             "AsyncProcess, then waits for the one OnEvent (timeout gives 1301; Ctrl-C KeyboardInterrupt).")
        .def("close", [](PluginHost & h) { without_gil([&] { h.close(); }); },
             "Deletes the plugin and dlclose()s the library (after calls inside the plugin return).")
        .def_property_readonly("closed", &PluginHost::closed)
        .def_property_readonly("contract_violations", [](const PluginHost & h) {
            py::list out;
            for (const std::string & v : h.contract_violations()) out.append(text(v));
            return out;
        })
        .def_property_readonly("contract_violation_count", &PluginHost::contract_violation_count)
        .def_property_readonly("late_replies", &PluginHost::late_replies);

    m.def("_begin_exit", [] { ohai::py::begin_interpreter_exit(); },
          "Interpreter exit (ohai.aie's atexit handler): other threads coming back from a plugin call park.");
    m.def("_wait_for_native_calls", [](double timeout_s) {
        ohai::py::wait_for_native_calls(std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000)));
    }, py::arg("timeout"), "Interpreter exit, after closing the hosts: waits until no thread is inside a plugin call.");
}
