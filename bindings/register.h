// One function per concept registers its part of ohai._core.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#ifdef __GLIBCXX__
#include <cxxabi.h>
#endif

namespace ohai::py {

void register_errors(pybind11::module_ & m);
void register_log(pybind11::module_ & m);
void register_model(pybind11::module_ & m);
void register_generation(pybind11::module_ & m);
void register_engine(pybind11::module_ & m);
void register_chat(pybind11::module_ & m);
void register_quantize(pybind11::module_ & m);
void register_bench(pybind11::module_ & m);
void register_system(pybind11::module_ & m);
void register_devices(pybind11::module_ & m);

// ---- Native work without the GIL, and interpreter exit -------------------------------------
//
// Once the interpreter is finalizing, CPython ends any other thread that tries to take the GIL
// back by calling pthread_exit(), which unwinds that thread's C++ frames by force. Inside
// pybind11's gil_scoped_release destructor (noexcept) such an unwind is std::terminate: a daemon
// thread inside generate/stream/embed/bench at exit crashed the process. So every long native
// call here runs through without_gil(), which takes the GIL back in an ordinary function and,
// first, parks the thread for good when the interpreter is exiting and this thread is not the
// one running the exit: the process is about to end, and CPython would stop the thread anyway.
// `ohai` starts the exit early, from an atexit handler (begin_interpreter_exit), so that threads
// park before finalization starts, and then waits until no thread is inside native work any more
// (wait_for_native_calls): none may run llama.cpp while exit() destroys static state. The check of
// Py_IsFinalizing covers `_core` used on its own.

namespace exit_state {
inline std::atomic<unsigned long> exiting_thread{0};   // thread running the exit; 0 = not exiting
inline std::atomic<unsigned long> main_thread{0};      // threading.main_thread(), set at import
inline std::atomic<int> native_calls{0};               // threads inside without_gil() now (reset in a forked child)
}  // namespace exit_state

inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// True when the interpreter is exiting and this thread must never run Python code again.
// Callable without the GIL.
inline bool must_park() {
    unsigned long exiting = exit_state::exiting_thread.load();
    if (exiting == 0) {
        if (!interpreter_finalizing()) return false;
        exiting = exit_state::main_thread.load();
    }
    return PyThread_get_thread_ident() != exiting;
}

// Blocks the calling thread until the process ends. Called without the GIL, holding no lock.
[[noreturn]] inline void park_forever() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
}

// Takes the GIL back after PyEval_SaveThread(), or parks (see above). Deliberately not a
// destructor: if the exit starts while this thread waits for the GIL, CPython's forced unwind
// passes through here like any exception instead of terminating the process.
inline void retake_gil(PyThreadState * state) {
    if (must_park()) park_forever();
    PyEval_RestoreThread(state);
}

// Runs `work` without the GIL and returns its result or rethrows its exception with the GIL
// held again; replaces gil_scoped_release / call_guard around native work.
template <typename Work>
auto without_gil(Work && work) -> decltype(work()) {
    using Result = decltype(work());
    PyThreadState * state = PyEval_SaveThread();
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<Result>, bool, Result>> result;
    struct Count {
        Count() { ++exit_state::native_calls; }
        ~Count() { --exit_state::native_calls; }
    };
    try {
        Count count;
        if constexpr (std::is_void_v<Result>) {
            work();
            result.emplace(true);
        } else {
            result.emplace(work());
        }
#ifdef __GLIBCXX__
    } catch (abi::__forced_unwind &) {
        throw;   // the thread is being ended (pthread_exit): let it go
#endif
    } catch (...) {
        error = std::current_exception();
    }
    retake_gil(state);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<Result>) return std::move(*result);
}

// Called by `ohai`'s atexit handler on the thread that runs the exit (holding the GIL): from
// now on every other thread parks instead of coming back into Python.
void begin_interpreter_exit();

// Waits (GIL released, at most `timeout`) until no thread is inside without_gil() any more.
void wait_for_native_calls(std::chrono::milliseconds timeout);

// Benchmarks run on threads of their own: cancels them and waits for their end (GIL released).
void stop_benchmarks();

// Runs `wait_once` (which blocks briefly; it runs without the GIL) until it returns true,
// checking for Ctrl-C between calls; on a signal runs `on_interrupt` (with the GIL) and raises.
template <typename WaitOnce, typename OnInterrupt>
void wait_interruptibly(WaitOnce wait_once, OnInterrupt on_interrupt) {
    for (;;) {
        if (without_gil(wait_once)) return;
        if (PyErr_CheckSignals() != 0) {
            on_interrupt();
            throw pybind11::error_already_set();
        }
    }
}

}  // namespace ohai::py
