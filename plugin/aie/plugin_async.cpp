// libohai_llm.so: the ASYNC plugin (AID ohai_llm), the one products should register.
#include "llm_plugin.h"

// The factory ai_engine looks up by name. No exception may cross this C boundary: a plugin
// that cannot start (no thread could be created) is reported as a null plugin.
extern "C" __attribute__((visibility("default"))) OHOS::AI::IPlugin * PLUGIN_INTERFACE() {
    try {
        return new ohai::aie::LlmPlugin(ohai::aie::InferMode::Async);
    } catch (...) {
        return nullptr;
    }
}
