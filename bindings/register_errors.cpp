// Maps ohai::Error codes to a small Python exception hierarchy.
#include "ohai/error.h"
#include "register.h"

namespace ohai::py {
namespace {

PyObject * g_base = nullptr;
PyObject * g_load = nullptr;
PyObject * g_invalid = nullptr;
PyObject * g_overflow = nullptr;
PyObject * g_overloaded = nullptr;

PyObject * new_exception(pybind11::module_ & m, const char * name, PyObject * bases, const char * doc) {
    const std::string qualified = std::string("ohai.") + name;
    PyObject * cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
    if (cls == nullptr) throw pybind11::error_already_set();
    m.attr(name) = pybind11::handle(cls);
    return cls;
}

}  // namespace

void register_errors(pybind11::module_ & m) {
    g_base = new_exception(m, "OhaiError", PyExc_Exception, "Base class of every error ohai raises.");
    g_load = new_exception(m, "ModelLoadError", g_base, "A model file is missing, unreadable or not a valid GGUF.");
    PyObject * invalid_bases = PyTuple_Pack(2, g_base, PyExc_ValueError);
    g_invalid = new_exception(m, "InvalidRequestError", invalid_bases,
                              "A request or parameter is invalid (also a ValueError).");
    Py_DECREF(invalid_bases);
    g_overflow = new_exception(m, "ContextOverflowError", g_invalid, "The input does not fit the model's context.");
    g_overloaded = new_exception(m, "OverloadedError", g_base,
                                 "The engine's request queue is full; try again later (HTTP 429 in `ohai serve`).");

    pybind11::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Error & e) {
            PyObject * cls = g_base;
            switch (e.code()) {
                case ErrorCode::ModelLoad: cls = g_load; break;
                case ErrorCode::InvalidArgument: cls = g_invalid; break;
                case ErrorCode::ContextOverflow: cls = g_overflow; break;
                case ErrorCode::Overloaded: cls = g_overloaded; break;
                default: break;
            }
            // Messages may quote file contents or paths: never let their bytes turn the error
            // into a UnicodeDecodeError.
            const std::string what = e.what();
            PyObject * message = PyUnicode_DecodeUTF8(what.data(), static_cast<Py_ssize_t>(what.size()), "replace");
            if (message == nullptr) return;
            PyErr_SetObject(cls, message);
            Py_DECREF(message);
        }
    });
}

}  // namespace ohai::py
