// ohai NNRt simulator — process-wide state, counters, faults and the exit-time stats file.
#include "sim_state.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ohai_sim {

namespace {

const char *const kCounterNames[kCounterCount] = {
    "models_alive",   "compilations_alive", "executors_alive",       "tensors_alive", "tensor_descs_alive",
    "builds",         "build_failures",     "runs",                  "run_failures",  "cache_hits",
    "cache_writes",   "available_ops_queries", "ops_executed",       "macs",          "bad_handles",
};

// Counters that describe live objects: a reset must not make a leak disappear.
bool is_alive_counter(int c) { return c <= kTensorDescsAlive; }

thread_local std::string t_last_error;
std::atomic<bool> g_log{false};

std::string json_escape(const std::string &s) {
    std::string out;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

// Strict decimal: "fail_after:3x" is a typo to report, not 3.
bool parse_count(const char *s, long long *out) {
    if (s == nullptr || *s == '\0') return false;
    long long v = 0;
    for (const char *p = s; *p; ++p) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
        if (v > (1LL << 40)) return false;
    }
    *out = v;
    return true;
}

std::string trim(const std::string &s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return s.substr(b, e - b);
}

void write_stats_file() {
    const char *path = std::getenv("OHAI_NNRT_SIM_STATS");
    if (path == nullptr || *path == '\0') return;
    std::string target(path);
    for (size_t pos; (pos = target.find("%p")) != std::string::npos;) {
        target.replace(pos, 2, std::to_string(static_cast<long long>(getpid())));
    }
    // Written aside and renamed, so a reader never sees half a file.
    const std::string tmp = target + ".tmp" + std::to_string(static_cast<long long>(getpid()));
    const std::string text = stats_json() + "\n";
    FILE *f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
        std::fprintf(stderr, "ohai nnrt_sim: cannot write %s: %s\n", tmp.c_str(), std::strerror(errno));
        return;
    }
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), target.c_str()) != 0) {
        std::fprintf(stderr, "ohai nnrt_sim: cannot write %s\n", target.c_str());
        std::remove(tmp.c_str());
    }
}

// Faults are read when the library loads, before any API call can arrive.
__attribute__((constructor)) void on_load() { reload_faults(); }

// Runs at exit() and at dlclose() of the last reference, whichever comes first.
__attribute__((destructor)) void on_unload() { write_stats_file(); }

}  // namespace

State &state() {
    static State *s = new State();   // intentionally never freed
    return *s;
}

const Device *find_device(size_t id) {
    State &st = state();
    if (st.faults.no_devices || st.devices.empty()) return nullptr;
    if (id == 0) return &st.devices.front();
    for (const Device &d : st.devices) {
        if (d.id == id) return &d;
    }
    return nullptr;
}

bool is_live(Kind kind, const void *p) { return state().live[kind].count(p) != 0; }
void add_live(Kind kind, const void *p) { state().live[kind].insert(p); }
void remove_live(Kind kind, const void *p) { state().live[kind].erase(p); }
void count_call(const char *function) { ++state().calls[function]; }

OH_NN_ReturnCode fail(OH_NN_ReturnCode code, const char *function, const std::string &why) {
    t_last_error = std::string(function) + ": " + why;
    if (g_log.load(std::memory_order_relaxed)) {
        std::fprintf(stderr, "ohai nnrt_sim: %s -> %d\n", t_last_error.c_str(), static_cast<int>(code));
    }
    return code;
}

void clear_error() { t_last_error.clear(); }

OH_NN_ReturnCode check_handle(Kind kind, const void *p, const char *function) {
    static const char *const names[kKindCount] = {"model", "compilation", "executor", "tensor", "tensor descriptor"};
    if (p == nullptr) return fail(OH_NN_INVALID_PARAMETER, function, std::string(names[kind]) + " is NULL");
    if (!is_live(kind, p)) {
        bump(kBadHandles);
        return fail(OH_NN_INVALID_PARAMETER, function, std::string(names[kind]) + " is not a live object");
    }
    return OH_NN_SUCCESS;
}

int reload_faults() {
    Faults f;
    int rc = 0;
    if (const char *env = std::getenv("OHAI_NNRT_SIM_FAULT")) {
        f.text = env;
        std::stringstream list(f.text);
        std::string item;
        while (std::getline(list, item, ',')) {
            item = trim(item);
            if (item.empty()) continue;
            if (item == "no_devices") {
                f.no_devices = true;
            } else if (item == "op_unsupported") {
                f.op_unsupported = true;
            } else if (item == "build_fail") {
                f.build_fail = true;
            } else if (item == "run_fail") {
                f.run_fail = true;
            } else if (item == "wrong_output_size") {
                f.wrong_output_size = true;
            } else if (item.compare(0, 11, "fail_after:") == 0 && parse_count(item.c_str() + 11, &f.fail_after)) {
                // parsed
            } else {
                std::fprintf(stderr, "ohai nnrt_sim: unknown fault '%s' in OHAI_NNRT_SIM_FAULT (ignored)\n", item.c_str());
                rc = -1;
            }
        }
    }
    long long v = 0;
    if (const char *env = std::getenv("OHAI_NNRT_SIM_SLOW_US")) {
        if (parse_count(env, &v) && v <= 10000000) {
            f.slow_us = static_cast<unsigned>(v);
        } else {
            std::fprintf(stderr, "ohai nnrt_sim: bad OHAI_NNRT_SIM_SLOW_US '%s' (ignored)\n", env);
            rc = -1;
        }
    }
    if (const char *env = std::getenv("OHAI_NNRT_SIM_THREADS")) {
        if (parse_count(env, &v) && v >= 1 && v <= 256) {
            f.threads = static_cast<unsigned>(v);
        } else {
            std::fprintf(stderr, "ohai nnrt_sim: bad OHAI_NNRT_SIM_THREADS '%s' (ignored)\n", env);
            rc = -1;
        }
    }
    if (const char *env = std::getenv("OHAI_NNRT_SIM_LOG")) f.log = *env != '\0' && std::strcmp(env, "0") != 0;
    g_log.store(f.log);
    State &st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    st.faults = f;
    st.device_runs = 0;
    return rc;
}

std::string stats_json() {
    State &st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    std::string out = "{";
    for (int c = 0; c < kCounterCount; ++c) {
        out += "\"" + std::string(kCounterNames[c]) + "\":" + std::to_string(st.counters[c].load()) + ",";
    }
    const size_t devices = st.faults.no_devices ? 0 : st.devices.size();
    out += "\"devices\":" + std::to_string(devices) + ",";
    out += "\"faults\":\"" + json_escape(st.faults.text) + "\",";
    out += "\"calls\":{";
    bool first = true;
    for (const auto &kv : st.calls) {
        out += (first ? "\"" : ",\"") + kv.first + "\":" + std::to_string(kv.second);
        first = false;
    }
    out += "}}";
    return out;
}

long long stat(const std::string &key) {
    State &st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    for (int c = 0; c < kCounterCount; ++c) {
        if (key == kCounterNames[c]) return st.counters[c].load();
    }
    if (key == "devices") return st.faults.no_devices ? 0 : static_cast<long long>(st.devices.size());
    if (key.compare(0, 6, "calls.") == 0) {
        const auto it = st.calls.find(key.substr(6));
        return it == st.calls.end() ? 0 : it->second;
    }
    return -1;
}

void reset_stats() {
    State &st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    for (int c = 0; c < kCounterCount; ++c) {
        if (!is_alive_counter(c)) st.counters[c].store(0);
    }
    st.calls.clear();
}

const char *last_error() { return t_last_error.c_str(); }

}  // namespace ohai_sim
