// Throughput benchmark in llama-bench's shape.
#include "ohai/bench.h"
#include "ohai/error.h"
#include "register.h"

#include <pybind11/stl.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>

namespace ohai::py {
namespace {

// The cancel flags of the benchmarks running now, so that interpreter exit can stop them: a
// benchmark thread must not run llama.cpp while the process tears down its static state.
struct RunningBenches {
    std::mutex mutex;
    std::condition_variable ended;
    std::set<std::atomic<bool> *> cancels;
    bool stopped = false;   // the interpreter is exiting: no new benchmark starts
};

RunningBenches * g_benches = nullptr;

RunningBenches & running_benches() {
    // Never destroyed: used until the process ends. A forked child gets a registry of its own (the
    // parent's benchmarks do not run there, and a parent thread may have held the mutex at the fork).
    static std::once_flag once;
    std::call_once(once, [] {
        g_benches = new RunningBenches();
        pthread_atfork(nullptr, nullptr, [] { g_benches = new RunningBenches(); });
    });
    return *g_benches;
}

// Registers a benchmark for its lifetime on its own thread.
struct BenchRegistration {
    std::atomic<bool> * cancel;
    explicit BenchRegistration(std::atomic<bool> * c) : cancel(c) {
        auto & r = running_benches();
        std::lock_guard<std::mutex> lock(r.mutex);
        if (r.stopped) throw Error(ErrorCode::Cancelled, "the interpreter is exiting");
        r.cancels.insert(cancel);
    }
    ~BenchRegistration() {
        auto & r = running_benches();
        {
            std::lock_guard<std::mutex> lock(r.mutex);
            r.cancels.erase(cancel);
        }
        r.ended.notify_all();
    }
};

}  // namespace

void stop_benchmarks() {
    without_gil([] {   // a benchmark thread may log on its way out, which needs the GIL
        auto & r = running_benches();
        std::unique_lock<std::mutex> lock(r.mutex);
        r.stopped = true;
        for (auto * cancel : r.cancels) *cancel = true;
        r.ended.wait(lock, [&] { return r.cancels.empty(); });
    });
}

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
              auto job = std::async(std::launch::async, [&] {
                  BenchRegistration registration(&cancel);
                  return run_bench(model, p);
              });
              wait_interruptibly([&] { return job.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready; },
                                 [&] {
                                     cancel = true;
                                     // The bench thread may log on its way out, which needs the GIL.
                                     without_gil([&] { job.wait(); });
                                 });
              return without_gil([&] { return job.get(); });
          },
          py::arg("model"), py::arg("n_prompt") = 512, py::arg("n_gen") = 128, py::arg("repetitions") = 3,
          py::arg("threads") = 0);
}

}  // namespace ohai::py
