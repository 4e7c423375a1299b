// ohai — work that runs in a separate process (the `ohai-isolate` helper) so that it cannot take
// the caller's process down or be left half-done: the first decode of every model file before
// it is loaded (the "probe"), and quantization.
//
// Why: llama.cpp and ggml abort the process (GGML_ASSERT) on many kinds of malformed models, and
// a host such as a system service or a Python program must survive any file it is handed. The
// engine refuses every bad file it knows of up front (gguf_check); the probe is the net for the
// rest: an abort, a crash or a hang in the child becomes Error(ModelLoad) here.
#pragma once

#include <string>

namespace ohai {

struct IsolationSettings {
    // The ohai-isolate executable; empty = $OHAI_ISOLATE, else `ohai-isolate` next to the binary
    // or library holding the engine, else next to the running executable.
    std::string executable;
    // Where files that passed the probe are remembered across processes (by path, device, inode,
    // size and modification time); empty = $OHAI_HOME/probed, else ~/.cache/ohai/probed.
    std::string cache_dir;
    // Probe every model file the first time it is seen ($OHAI_PROBE=0 turns it off).
    bool probe_models = true;
    // How long a probe may take (loading and one short decode) before the file is refused;
    // $OHAI_PROBE_TIMEOUT (seconds) overrides it.
    int probe_timeout_s = 300;
};

// Process-wide; thread-safe.
void set_isolation_settings(const IsolationSettings & settings);
IsolationSettings isolation_settings();

// The resolved path of ohai-isolate, or "" when it cannot be found.
std::string isolate_executable();

// Runs the probe for `path` unless it passed before (in this process or in the cache).
// Throws Error(ModelLoad) when the child reports an error, crashes or times out. When the helper
// cannot be found the probe is skipped with a warning in the log (the up-front checks still run).
void probe_model_file(const std::string & path);

}  // namespace ohai
