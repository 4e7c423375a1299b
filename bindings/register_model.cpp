// ohai._core.Model: loading, model info, tokenizer.
#include "ohai/model.h"
#include "register.h"

#include <pybind11/stl.h>

namespace ohai::py {

void register_model(pybind11::module_ & m) {
    namespace py = pybind11;
    py::class_<ModelInfo>(m, "ModelInfo")
        .def_readonly("path", &ModelInfo::path)
        .def_readonly("arch", &ModelInfo::arch)
        .def_readonly("description", &ModelInfo::description)
        .def_readonly("n_params", &ModelInfo::n_params)
        .def_readonly("size_bytes", &ModelInfo::size_bytes)
        .def_readonly("n_ctx_train", &ModelInfo::n_ctx_train)
        .def_readonly("n_vocab", &ModelInfo::n_vocab)
        .def_readonly("n_embd", &ModelInfo::n_embd)
        .def_readonly("n_layer", &ModelInfo::n_layer)
        .def_readonly("file_type", &ModelInfo::file_type)
        .def_readonly("device", &ModelInfo::device)
        .def_property_readonly("chat_template", [](const ModelInfo & i) {
            return py::bytes(i.chat_template).attr("decode")("utf-8", "replace");
        });

    py::class_<Model, std::shared_ptr<Model>>(m, "Model")
        .def(py::init([](const std::string & path, bool vocab_only, bool use_mmap, const std::string & device) {
                 ModelParams p;
                 p.path = path;
                 p.vocab_only = vocab_only;
                 p.use_mmap = use_mmap;
                 p.device = device;
                 return without_gil([&] { return Model::load(p); });
             }),
             py::arg("path"), py::arg("vocab_only") = false, py::arg("use_mmap") = true, py::arg("device") = "auto")
        .def_property_readonly("info", &Model::info)
        .def_property_readonly("vocab_only", &Model::vocab_only)
        .def("tokenize", [](const Model & model, const std::string & text, bool add_special, bool parse_special) {
                 return without_gil([&] { return model.tokenize(text, add_special, parse_special); });
             },
             py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false)
        .def("detokenize", [](const Model & model, const std::vector<Token> & tokens, bool render_special) {
                 const std::string text = without_gil([&] { return model.detokenize(tokens, render_special); });
                 // A token list may end inside a UTF-8 character; never fail on that.
                 return py::bytes(text).attr("decode")("utf-8", "replace");
             },
             py::arg("tokens"), py::arg("render_special") = false)
        .def("token_to_piece", [](const Model & model, Token token, bool render_special) {
                 return py::bytes(model.token_to_piece(token, render_special));
             },
             py::arg("token"), py::arg("render_special") = false)
        .def("is_end_of_generation", &Model::is_end_of_generation);
}

}  // namespace ohai::py
