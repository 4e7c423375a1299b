// Chat templates.
#include "ohai/chat.h"
#include "register.h"

#include <pybind11/stl.h>

namespace ohai::py {

void register_chat(pybind11::module_ & m) {
    namespace py = pybind11;
    m.def("apply_chat_template",
          [](const Model & model, const std::vector<std::pair<std::string, std::string>> & messages, bool add_assistant) {
              std::vector<ChatMessage> chat;
              for (const auto & [role, content] : messages) chat.push_back({role, content});
              return without_gil([&] { return apply_chat_template(model, chat, add_assistant); });
          },
          py::arg("model"), py::arg("messages"), py::arg("add_assistant") = true,
          "Formats (role, content) pairs with the model's chat template.");
}

}  // namespace ohai::py
