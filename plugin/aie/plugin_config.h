// ohai — the plugin's configuration file (JSON), read once when ai_engine creates the plugin.
#pragma once

#include <cstdint>
#include <string>

namespace ohai::aie {

// Where the configuration is looked for when $OHAI_AIE_CONFIG is not set (a build may override
// it with -DOHAI_AIE_DEFAULT_CONFIG=...).
#ifndef OHAI_AIE_DEFAULT_CONFIG
#define OHAI_AIE_DEFAULT_CONFIG "/system/etc/ohai/ohai_llm.json"
#endif
#ifndef OHAI_AIE_DEFAULT_MODEL_DIR
#define OHAI_AIE_DEFAULT_MODEL_DIR "/data/ohai/models"
#endif

struct PluginConfig {
    std::string model_dir = OHAI_AIE_DEFAULT_MODEL_DIR;   // $OHAI_AIE_MODEL_DIR overrides the file
    uint32_t n_ctx = 2048;             // default context of Prepare (tokens, shared by the streams)
    int32_t threads = 0;               // default decode threads of Prepare; 0 = all cores
    uint32_t parallel = 0;             // sequences decoded together per engine; 0 = the engine's default
    std::string device = "auto";       // default device of Prepare: auto | cpu | nnrt | nnrt:<name>
    uint32_t max_streams = 16;         // open streams over all transactions
    // Limits on what one Prepare may ask for: every app reaches the plugin, and ai_engine checks
    // no permission, so no client may be able to exhaust the device's memory or cores.
    uint32_t max_engines = 2;          // distinct (model, options) engines loaded at once
    uint32_t max_n_ctx = 8192;         // largest context a Prepare may ask for
    int32_t max_threads = 0;           // most decode threads a Prepare may ask for; 0 = the cores
    double stream_idle_timeout_s = 60; // a stream nobody polls for this long is cancelled and freed
    uint32_t max_wait_ms = 30000;      // upper bound of stream_next's wait_ms
    std::string isolate;               // ohai-isolate; "" = next to the plugin library or one folder up
    // Where model files that passed the probe are remembered across restarts of the service;
    // "" = $OHAI_HOME/probed, else ~/.cache/ohai/probed (a system service may have neither).
    std::string probe_cache_dir;
    std::string log_level = "warn";    // engine log lines to stderr at this level and above; "none" = off
};

struct LoadedConfig {
    PluginConfig config;
    std::string path;    // the file that was read ("" when none was found)
    std::string error;   // why the file could not be used; Prepare reports it
    std::string warning; // logged once
};

// Reads $OHAI_AIE_CONFIG, else OHAI_AIE_DEFAULT_CONFIG. A missing file means the defaults (logged
// when $OHAI_AIE_CONFIG named it); a file that cannot be read, is not valid JSON, or has unknown
// fields or bad values leaves `error` set and the defaults in `config` (nothing of it is used).
LoadedConfig load_plugin_config();

}  // namespace ohai::aie
