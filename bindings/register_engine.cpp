// ohai._core.Engine: the request queue over one model.
#include "ohai/engine.h"
#include "register.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

namespace ohai::py {

void register_engine(pybind11::module_ & m) {
    namespace py = pybind11;
    py::class_<Engine, std::shared_ptr<Engine>>(m, "Engine")
        .def(py::init([](std::shared_ptr<Model> model, uint32_t n_ctx, int32_t threads) {
                 EngineParams p;
                 p.n_ctx = n_ctx;
                 p.n_threads = threads;
                 py::gil_scoped_release release;
                 // ~Engine joins the worker, which may be waiting for the GIL (log handler): never hold it there.
                 return std::shared_ptr<Engine>(new Engine(std::move(model), p), [](Engine * e) {
                     if (PyGILState_Check()) {
                         py::gil_scoped_release unlocked;
                         delete e;
                     } else {
                         delete e;
                     }
                 });
             }),
             py::arg("model"), py::arg("n_ctx") = 0, py::arg("threads") = 0)
        .def_property_readonly("n_ctx", &Engine::n_ctx)
        .def("submit", &Engine::submit, py::arg("request"), py::call_guard<py::gil_scoped_release>(),
             "Validates and queues a request; returns its Generation.")
        .def("embed", [](Engine & e, const std::vector<std::string> & texts, bool normalize) {
                 std::vector<std::vector<float>> rows;
                 {
                     py::gil_scoped_release release;
                     rows = e.embed(texts, normalize);
                 }
                 const size_t dim = rows.empty() ? static_cast<size_t>(e.model().info().n_embd) : rows[0].size();
                 py::array_t<float> out({rows.size(), dim});
                 auto w = out.mutable_unchecked<2>();
                 for (size_t i = 0; i < rows.size(); ++i)
                     for (size_t j = 0; j < dim; ++j) w(i, j) = rows[i][j];
                 return out;
             },
             py::arg("texts"), py::arg("normalize") = true)
        .def("logits", [](Engine & e, const std::vector<Token> & tokens, size_t prompt_tokens) {
                 std::vector<float> flat;
                 {
                     py::gil_scoped_release release;
                     flat = e.logits(tokens, prompt_tokens);
                 }
                 const size_t n_vocab = static_cast<size_t>(e.model().info().n_vocab);
                 py::array_t<float> out({tokens.size(), n_vocab});
                 std::copy(flat.begin(), flat.end(), out.mutable_data());
                 return out;
             },
             py::arg("tokens"), py::arg("prompt_tokens"))
        .def("close", &Engine::close, py::call_guard<py::gil_scoped_release>());
}

}  // namespace ohai::py
