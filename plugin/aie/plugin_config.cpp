#include "plugin_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "request_json.h"

namespace ohai::aie {

namespace {

constexpr size_t kMaxConfigBytes = 64 * 1024;

std::string env(const char * name) {
    const char * v = std::getenv(name);
    return v ? v : "";
}

void read_fields(const wire::Json & j, PluginConfig & c) {
    wire::check_fields(j, {"model_dir", "n_ctx", "threads", "parallel", "max_streams", "stream_idle_timeout_s",
                           "max_wait_ms", "isolate", "probe_cache_dir", "log_level", "device", "max_engines",
                           "max_n_ctx", "max_threads"});
    c.model_dir = wire::get_string(j, "model_dir", c.model_dir);
    c.n_ctx = static_cast<uint32_t>(wire::get_int(j, "n_ctx", c.n_ctx, 0, 1 << 20));
    c.threads = static_cast<int32_t>(wire::get_int(j, "threads", c.threads, 0, 512));
    c.parallel = static_cast<uint32_t>(wire::get_int(j, "parallel", c.parallel, 0, 64));
    c.max_streams = static_cast<uint32_t>(wire::get_int(j, "max_streams", c.max_streams, 1, 4096));
    c.stream_idle_timeout_s = wire::get_number(j, "stream_idle_timeout_s", c.stream_idle_timeout_s);
    if (c.stream_idle_timeout_s <= 0 || c.stream_idle_timeout_s > 86400)
        throw wire::WireError(wire::ErrorKind::InvalidRequest, "\"stream_idle_timeout_s\" must be in (0, 86400]");
    c.max_wait_ms = static_cast<uint32_t>(wire::get_int(j, "max_wait_ms", c.max_wait_ms, 0, 600000));
    c.device = wire::get_string(j, "device", c.device);
    c.max_engines = static_cast<uint32_t>(wire::get_int(j, "max_engines", c.max_engines, 1, 64));
    c.max_n_ctx = static_cast<uint32_t>(wire::get_int(j, "max_n_ctx", c.max_n_ctx, 8, 1 << 20));
    c.max_threads = static_cast<int32_t>(wire::get_int(j, "max_threads", c.max_threads, 0, 512));
    c.isolate = wire::get_string(j, "isolate", c.isolate);
    if (!c.isolate.empty() && ::access(c.isolate.c_str(), X_OK) != 0)
        throw wire::WireError(wire::ErrorKind::InvalidRequest,
                              "\"isolate\" names " + c.isolate + ", which is not an executable file");
    c.probe_cache_dir = wire::get_string(j, "probe_cache_dir", c.probe_cache_dir);
    c.log_level = wire::get_string(j, "log_level", c.log_level);
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error" &&
        c.log_level != "none")
        throw wire::WireError(wire::ErrorKind::InvalidRequest, "\"log_level\" must be debug, info, warn, error or none");
}

}  // namespace

LoadedConfig load_plugin_config() {
    LoadedConfig out;
    const std::string from_env = env("OHAI_AIE_CONFIG");
    const std::string path = from_env.empty() ? OHAI_AIE_DEFAULT_CONFIG : from_env;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
        if (!from_env.empty()) out.warning = "the configuration file " + path + " (OHAI_AIE_CONFIG) does not exist: using the defaults";
    } else {
        out.path = path;
        std::ifstream in(path, std::ios::binary);
        std::ostringstream text;
        if (in) text << in.rdbuf();
        const std::string bytes = text.str();
        // Parsed into a copy: a file with one bad field is not half applied.
        PluginConfig parsed;
        try {
            if (!in || in.bad()) throw std::runtime_error("it cannot be read");
            if (bytes.size() > kMaxConfigBytes) throw std::runtime_error("it is larger than 64 KiB");
            read_fields(wire::parse_object(bytes.data(), bytes.size(), "the file"), parsed);
            out.config = parsed;
        } catch (const std::exception & e) {
            out.error = "the configuration file " + path + " cannot be used: " + e.what();
        }
    }
    const std::string model_dir = env("OHAI_AIE_MODEL_DIR");
    if (!model_dir.empty()) out.config.model_dir = model_dir;
    return out;
}

}  // namespace ohai::aie
