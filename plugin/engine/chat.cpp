#include "ohai/chat.h"

#include "llama.h"
#include "ohai/error.h"

namespace ohai {

std::string apply_chat_template(const Model & model, const std::vector<ChatMessage> & messages, bool add_assistant_prompt) {
    if (messages.empty()) throw Error(ErrorCode::InvalidArgument, "a chat needs at least one message");
    std::vector<llama_chat_message> chat;
    size_t total = 0;
    for (const auto & m : messages) {
        if (m.role.empty()) throw Error(ErrorCode::InvalidArgument, "every chat message needs a role");
        chat.push_back({m.role.c_str(), m.content.c_str()});
        total += m.role.size() + m.content.size();
    }
    const std::string & embedded = model.info().chat_template;
    const char * tmpl = embedded.empty() ? "chatml" : embedded.c_str();
    std::string buf(total * 2 + 256, '\0');
    int32_t n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_assistant_prompt, buf.data(),
                                          static_cast<int32_t>(buf.size()));
    if (n > static_cast<int32_t>(buf.size())) {
        buf.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_assistant_prompt, buf.data(),
                                      static_cast<int32_t>(buf.size()));
    }
    if (n < 0) throw Error(ErrorCode::InvalidArgument, "the model's chat template is not one llama.cpp supports");
    buf.resize(static_cast<size_t>(n));
    return buf;
}

}  // namespace ohai
