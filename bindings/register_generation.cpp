// Requests, completions and the live Generation handle (an iterator of text pieces).
#include "ohai/engine.h"
#include "ohai/generation.h"
#include "register.h"
#include "request_json.h"

#include <pybind11/stl.h>

namespace ohai::py {

void register_generation(pybind11::module_ & m) {
    namespace py = pybind11;
    py::class_<SamplingParams>(m, "SamplingParams")
        .def(py::init<>())
        .def_readwrite("temperature", &SamplingParams::temperature)
        .def_readwrite("top_k", &SamplingParams::top_k)
        .def_readwrite("top_p", &SamplingParams::top_p)
        .def_readwrite("min_p", &SamplingParams::min_p)
        .def_readwrite("repeat_penalty", &SamplingParams::repeat_penalty)
        .def_readwrite("repeat_last_n", &SamplingParams::repeat_last_n)
        .def_readwrite("seed", &SamplingParams::seed);

    py::class_<GenerateRequest>(m, "GenerateRequest")
        .def(py::init<>())
        .def_readwrite("prompt", &GenerateRequest::prompt)
        .def_readwrite("prompt_tokens", &GenerateRequest::prompt_tokens)
        .def_readwrite("add_special", &GenerateRequest::add_special)
        .def_readwrite("parse_special", &GenerateRequest::parse_special)
        .def_readwrite("max_tokens", &GenerateRequest::max_tokens)
        .def_readwrite("stop", &GenerateRequest::stop)
        .def_readwrite("sampling", &GenerateRequest::sampling);

    py::class_<Usage>(m, "Usage")
        .def_readonly("prompt_tokens", &Usage::prompt_tokens)
        .def_readonly("completion_tokens", &Usage::completion_tokens)
        .def_readonly("cached_prompt_tokens", &Usage::cached_prompt_tokens);
    py::class_<Timings>(m, "Timings")
        .def_readonly("prompt_ms", &Timings::prompt_ms)
        .def_readonly("decode_ms", &Timings::decode_ms)
        .def_readonly("prompt_per_second", &Timings::prompt_per_second)
        .def_readonly("decode_per_second", &Timings::decode_per_second);
    py::class_<Completion>(m, "Completion")
        .def_readonly("text", &Completion::text)
        .def_readonly("tokens", &Completion::tokens)
        .def_property_readonly("finish_reason", [](const Completion & c) { return finish_reason_name(c.finish_reason); })
        .def_readonly("usage", &Completion::usage)
        .def_readonly("timings", &Completion::timings);
    m.def("completion_json", [](const Completion & c) { return wire::dump(wire::completion_json(c)); },
          "The engine's JSON form of a completion (ohai-cli --json, the ai_engine plugin).");

    py::class_<Generation, std::shared_ptr<Generation>>(m, "Generation")
        .def("__iter__", [](py::object self) { return self; })
        .def("__next__", [](Generation & g) -> py::str {
            std::string piece;
            Generation::Poll poll = Generation::Poll::Timeout;
            wait_interruptibly([&] {
                poll = g.next(piece, std::chrono::milliseconds(50));
                return poll != Generation::Poll::Timeout;
            }, [&] { g.cancel(); });
            if (poll == Generation::Poll::Done) throw py::stop_iteration();
            return py::str(piece);
        })
        .def("result", [](Generation & g) {
            wait_interruptibly([&] { return g.wait_for(std::chrono::milliseconds(50)); }, [&] { g.cancel(); });
            return without_gil([&] { return g.wait(); });
        }, "Waits for the end of the request (Ctrl-C cancels it) and returns its Completion.")
        .def("cancel", &Generation::cancel)
        .def_property_readonly("cancelled", &Generation::cancelled);
}

}  // namespace ohai::py
