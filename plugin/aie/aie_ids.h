// ohai — how ai_engine knows our two plugins: algorithm ids (AIDs), version codes and the option
// codes of SetOption/GetOption (docs/aie-protocol.md).
#pragma once

namespace ohai::aie {

// libohai_llm.so: infer mode ASYNC, the primary plugin (a long generation never blocks the
// server's IPC thread).
constexpr const char * kAsyncAid = "ohai_llm";
constexpr long long kAsyncVersion = 1;
// libohai_llm_sync.so: infer mode SYNC, for clients that prefer blocking calls.
constexpr const char * kSyncAid = "ohai_llm_sync";
constexpr long long kSyncVersion = 1;

enum OptionType : int {
    // Set/Get: default sampling parameters for requests that leave them out
    // ({"max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed"}).
    kOptionDefaults = 1001,
    // Get: the loaded models ({"models": [<model info>, ...]}).
    kOptionModels = 1002,
    // Get: runtime statistics ({"transactions", "engines", "active_streams", "requests", "tokens_generated"}).
    kOptionStats = 2001,
};

}  // namespace ohai::aie
