// One function per concept registers its part of ohai._core.
#pragma once

#include <pybind11/pybind11.h>

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

// Runs `wait_once` (which blocks briefly without the GIL) until it returns true,
// checking for Ctrl-C between calls; on a signal runs `on_interrupt` and raises.
template <typename WaitOnce, typename OnInterrupt>
void wait_interruptibly(WaitOnce wait_once, OnInterrupt on_interrupt) {
    for (;;) {
        bool done;
        {
            pybind11::gil_scoped_release release;
            done = wait_once();
        }
        if (done) return;
        if (PyErr_CheckSignals() != 0) {
            on_interrupt();
            throw pybind11::error_already_set();
        }
    }
}

}  // namespace ohai::py
