// libohai_llm_sync.so: the SYNC plugin (AID ohai_llm_sync); every call blocks the caller's IPC
// thread until it is answered, so long generations belong on the ASYNC plugin.
#include "llm_plugin.h"

extern "C" __attribute__((visibility("default"))) OHOS::AI::IPlugin * PLUGIN_INTERFACE() {
    try {
        return new ohai::aie::LlmPlugin(ohai::aie::InferMode::Sync);
    } catch (...) {
        return nullptr;
    }
}
