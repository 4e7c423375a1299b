#include "ohai/isolation.h"

#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "child_process.h"
#include "isolate_protocol.h"
#include "ohai/error.h"
#include "ohai/log.h"
#include "text_stream.h"

namespace ohai {
namespace {

std::mutex g_mutex;
IsolationSettings g_settings;
std::set<std::string> g_passed;   // probe keys that passed in this process

std::string env(const char * name) {
    const char * v = std::getenv(name);
    return v ? v : "";
}

std::string dirname_of(const std::string & path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool is_executable(const std::string & path) {
    struct stat st {};
    return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string default_cache_dir() {
    std::string home = env("OHAI_HOME");
    if (home.empty()) {
        const std::string xdg = env("XDG_CACHE_HOME");
        if (!xdg.empty()) home = xdg + "/ohai";
        else if (!env("HOME").empty()) home = env("HOME") + "/.cache/ohai";
    }
    return home.empty() ? std::string() : home + "/probed";
}

// What makes a probe result reusable: the same file (path, device, inode, size, mtime, ctime —
// a rewrite that restores the mtime still changes the ctime) checked by the same build of this
// file's engine (its compile time stands for the build).
std::string probe_key(const std::string & path, const struct stat & st) {
    std::ostringstream key;
    key << "ohai-probe-v1 build=" << OHAI_BUILD_CPU_TARGET << "/" << __DATE__ << " " << __TIME__
        << " dev=" << st.st_dev << " ino=" << st.st_ino << " size=" << st.st_size
        << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec
        << " ctime=" << st.st_ctim.tv_sec << "." << st.st_ctim.tv_nsec << " path=" << path;
    return key.str();
}

std::string fnv1a_hex(const std::string & s) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

bool cache_has(const std::string & dir, const std::string & key) {
    if (dir.empty()) return false;
    std::ifstream in(dir + "/" + fnv1a_hex(key));
    std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return stored == key;
}

void cache_put(const std::string & dir, const std::string & key) {
    if (dir.empty()) return;
    // Best effort: a cache that cannot be written only costs another probe next time.
    std::string parent = dirname_of(dir);
    if (!parent.empty()) ::mkdir(parent.c_str(), 0777);
    ::mkdir(dir.c_str(), 0777);
    const std::string final_path = dir + "/" + fnv1a_hex(key);
    const std::string tmp = final_path + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << key;
        if (!out) {
            std::remove(tmp.c_str());
            return;
        }
    }
    if (std::rename(tmp.c_str(), final_path.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace

void set_isolation_settings(const IsolationSettings & settings) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_settings = settings;
}

IsolationSettings isolation_settings() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_settings;
}

std::string isolate_executable() {
    const IsolationSettings s = isolation_settings();
    if (!s.executable.empty()) return is_executable(s.executable) ? s.executable : std::string();
    const std::string from_env = env("OHAI_ISOLATE");
    if (!from_env.empty()) return is_executable(from_env) ? from_env : std::string();
    std::vector<std::string> dirs;
    Dl_info info {};
    if (::dladdr(reinterpret_cast<void *>(&isolate_executable), &info) != 0 && info.dli_fname &&
        std::string(info.dli_fname).find('/') != std::string::npos)
        dirs.push_back(dirname_of(info.dli_fname));
    char self[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) dirs.push_back(dirname_of(std::string(self, static_cast<size_t>(n))));
    for (const auto & d : dirs) {
        const std::string candidate = d + "/ohai-isolate";
        if (is_executable(candidate)) return candidate;
    }
    return {};
}

void probe_model_file(const std::string & path) {
    const IsolationSettings s = isolation_settings();
    const std::string env_probe = env("OHAI_PROBE");
    if (!s.probe_models || env_probe == "0" || env_probe == "off") return;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;   // the loader reports a missing file itself
    const std::string key = probe_key(path, st);
    const std::string cache_dir = s.cache_dir.empty() ? default_cache_dir() : s.cache_dir;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (g_passed.count(key)) return;
    }
    if (cache_has(cache_dir, key)) {
        std::lock_guard<std::mutex> lock(g_mutex);
        g_passed.insert(key);
        return;
    }
    const std::string exe = isolate_executable();
    if (exe.empty()) {
        static std::once_flag warned;
        std::call_once(warned, [] {
            log_message(LogLevel::Warn, "ohai: ohai-isolate not found (set OHAI_ISOLATE): model files are not "
                                        "probed in a separate process before loading");
        });
        return;
    }
    ChildParams cp;
    cp.argv = {exe, "probe", path, "--parent", std::to_string(::getpid())};
    int timeout_s = s.probe_timeout_s > 0 ? s.probe_timeout_s : 300;
    const long from_env = std::atol(env("OHAI_PROBE_TIMEOUT").c_str());
    if (from_env > 0 && from_env < 86400) timeout_s = static_cast<int>(from_env);
    cp.timeout = std::chrono::seconds(timeout_s);
    const ChildResult r = run_child(cp);
    if (!r.started) {
        log_message(LogLevel::Warn, "ohai: cannot run " + exe + " (" + r.error + "): model not probed");
        return;
    }
    if (!r.ok()) {
        const std::string why = utf8_sanitize(r.last_stderr_line());
        ErrorCode code;
        const std::string message = utf8_sanitize(isolate::child_message(r.last_stderr_line()));
        if (r.signal == 0 && !r.timed_out && isolate::code_from_exit(r.exit_code, code) && !message.empty())
            throw Error(ErrorCode::ModelLoad, message);   // the child refused the file cleanly
        throw Error(ErrorCode::ModelLoad,
                    "model '" + path + "' " +
                        (r.timed_out ? "did not finish a test decode within " + std::to_string(cp.timeout.count() / 1000) + " s"
                                     : "crashed a test decode in a separate process (" + r.describe() + ")") +
                        (why.empty() ? "" : ": " + why));
    }
    cache_put(cache_dir, key);
    std::lock_guard<std::mutex> lock(g_mutex);
    g_passed.insert(key);
}

}  // namespace ohai
