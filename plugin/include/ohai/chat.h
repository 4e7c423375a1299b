// ohai — chat prompts through the model's embedded template.
#pragma once

#include <string>
#include <vector>

#include "ohai/model.h"

namespace ohai {

struct ChatMessage {
    std::string role;      // "system", "user", "assistant", ...
    std::string content;
};

// Formats `messages` with the model's chat template (llama.cpp's built-in
// template support; ChatML when the model embeds none). Throws InvalidArgument
// on an empty list, an empty role or a template llama.cpp does not know.
std::string apply_chat_template(const Model & model, const std::vector<ChatMessage> & messages,
                                bool add_assistant_prompt = true);

}  // namespace ohai
