// Throughput benchmark in llama-bench's shape.
#include "ohai/bench.h"
#include "register.h"

#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <future>

namespace ohai::py {

void register_bench(pybind11::module_ & m) {
    namespace py = pybind11;
    py::class_<BenchResult>(m, "BenchResult")
        .def_readonly("test", &BenchResult::test)
        .def_readonly("n_prompt", &BenchResult::n_prompt)
        .def_readonly("n_gen", &BenchResult::n_gen)
        .def_readonly("n_threads", &BenchResult::n_threads)
        .def_readonly("samples_ts", &BenchResult::samples_ts)
        .def_readonly("avg_ts", &BenchResult::avg_ts)
        .def_readonly("stddev_ts", &BenchResult::stddev_ts);
    m.def("bench",
          [](const Model & model, int32_t n_prompt, int32_t n_gen, int32_t repetitions, int32_t threads) {
              // The benchmark runs on a thread of its own so that this one can notice Ctrl-C and stop it.
              std::atomic<bool> cancel{false};
              BenchParams p{n_prompt, n_gen, repetitions, threads, &cancel};
              auto job = std::async(std::launch::async, [&] { return run_bench(model, p); });
              wait_interruptibly([&] { return job.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready; },
                                 [&] {
                                     cancel = true;
                                     // The bench thread may log on its way out, which needs the GIL.
                                     py::gil_scoped_release release;
                                     job.wait();
                                 });
              py::gil_scoped_release release;
              return job.get();
          },
          py::arg("model"), py::arg("n_prompt") = 512, py::arg("n_gen") = 128, py::arg("repetitions") = 3,
          py::arg("threads") = 0);
}

}  // namespace ohai::py
