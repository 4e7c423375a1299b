// ohai._core.Engine: the request queue over one model; and the interpreter-exit hooks.
#include "ohai/engine.h"
#include "register.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <pthread.h>

#include <mutex>

namespace ohai::py {

void begin_interpreter_exit() { exit_state::exiting_thread = PyThread_get_thread_ident(); }

void wait_for_native_calls(std::chrono::milliseconds timeout) {
    // Not through without_gil(): this thread must neither count itself nor park.
    PyThreadState * state = PyEval_SaveThread();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (exit_state::native_calls.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    PyEval_RestoreThread(state);
}

void register_engine(pybind11::module_ & m) {
    namespace py = pybind11;
    exit_state::main_thread = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    // The threads counted in native_calls do not exist in a forked child; the forking thread itself
    // runs Python code (os.fork), not native work.
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, [] { exit_state::native_calls = 0; }); });

    py::class_<Engine, std::shared_ptr<Engine>>(m, "Engine")
        .def(py::init([](std::shared_ptr<Model> model, uint32_t n_ctx, int32_t threads, uint32_t parallel,
                         const std::string & kv_type, uint32_t max_queued, uint32_t n_batch) {
                 EngineParams p;
                 p.n_ctx = n_ctx;
                 p.n_threads = threads;
                 p.n_parallel = parallel;
                 p.kv_type = parse_kv_type(kv_type);
                 p.max_queued = max_queued;
                 p.n_batch = n_batch;
                 return without_gil([&] {
                     // ~Engine joins the worker, which may be waiting for the GIL (log handler): never hold it there.
                     auto engine = std::shared_ptr<Engine>(new Engine(std::move(model), p), [](Engine * e) {
                         if (PyGILState_Check()) {
                             without_gil([e] { delete e; });
                         } else {
                             delete e;
                         }
                     });
                     // Created while the interpreter exits: nobody will use or close it, this thread parks.
                     if (must_park()) engine->close();
                     return engine;
                 });
             }),
             py::arg("model"), py::arg("n_ctx") = 0, py::arg("threads") = 0, py::arg("parallel") = 0,
             py::arg("kv_type") = "f16", py::arg("max_queued") = EngineParams{}.max_queued,
             py::arg("n_batch") = EngineParams{}.n_batch)
        .def_property_readonly("n_ctx", &Engine::n_ctx)
        .def_property_readonly("parallel", [](const Engine & e) { return e.params().n_parallel; })
        .def_property_readonly("kv_type", [](const Engine & e) { return std::string(kv_type_name(e.params().kv_type)); })
        .def("stats", [](const Engine & e) {
                 const EngineStats s = e.stats();
                 py::dict d;
                 d["parallel"] = s.n_parallel;
                 d["running"] = s.running;
                 d["queued"] = s.queued;
                 d["kv_block_size"] = s.kv_block_size;
                 d["kv_blocks_total"] = s.kv_blocks_total;
                 d["kv_blocks_used"] = s.kv_blocks_used;
                 d["kv_blocks_cached"] = s.kv_blocks_cached;
                 d["requests_completed"] = s.requests_completed;
                 d["requests_cancelled"] = s.requests_cancelled;
                 d["requests_failed"] = s.requests_failed;
                 d["requests_rejected"] = s.requests_rejected;
                 d["preemptions"] = s.preemptions;
                 d["tokens_generated"] = s.tokens_generated;
                 d["prompt_tokens_decoded"] = s.prompt_tokens_decoded;
                 d["prompt_tokens_cached"] = s.prompt_tokens_cached;
                 return d;
             }, "Counters and gauges of the scheduler (see EngineStats).")
        .def("submit", [](Engine & e, const GenerateRequest & request) {
                 return without_gil([&] { return e.submit(request); });
             },
             py::arg("request"), "Validates and queues a request; returns its Generation.")
        .def("embed", [](Engine & e, const std::vector<std::string> & texts, bool normalize) {
                 std::vector<std::vector<float>> rows = without_gil([&] { return e.embed(texts, normalize); });
                 const size_t dim = rows.empty() ? static_cast<size_t>(e.model().info().n_embd) : rows[0].size();
                 py::array_t<float> out({rows.size(), dim});
                 auto w = out.mutable_unchecked<2>();
                 for (size_t i = 0; i < rows.size(); ++i)
                     for (size_t j = 0; j < dim; ++j) w(i, j) = rows[i][j];
                 return out;
             },
             py::arg("texts"), py::arg("normalize") = true)
        .def("logits", [](Engine & e, const std::vector<Token> & tokens, size_t prompt_tokens) {
                 std::vector<float> flat = without_gil([&] { return e.logits(tokens, prompt_tokens); });
                 const size_t n_vocab = static_cast<size_t>(e.model().info().n_vocab);
                 py::array_t<float> out({tokens.size(), n_vocab});
                 std::copy(flat.begin(), flat.end(), out.mutable_data());
                 return out;
             },
             py::arg("tokens"), py::arg("prompt_tokens"))
        .def("close", [](Engine & e) { without_gil([&] { e.close(); }); });

    m.def("_begin_exit", [] {
        begin_interpreter_exit();
        stop_benchmarks();
    }, "Interpreter exit (ohai's atexit handler): from now on other threads that come back from native "
       "work park instead of running Python code; running benchmarks are stopped.");
    m.def("_wait_for_native_calls", [](double timeout_s) {
        wait_for_native_calls(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    }, py::arg("timeout"),
       "Interpreter exit, after closing the models: waits until no other thread is inside native work.");
    m.def("_park_if_exiting", [] { without_gil([] {}); },
          "Parks the calling thread for good if the interpreter is exiting and it is not the exiting thread.");
}

}  // namespace ohai::py
