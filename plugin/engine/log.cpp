#include "ohai/log.h"

#include <mutex>

#include "llama.h"

namespace ohai {
namespace {

std::mutex g_mutex;
LogHandler g_handler;
LogLevel g_min_level = LogLevel::None;
thread_local std::string t_last_error;
thread_local std::string t_partial;      // llama.cpp sometimes logs a line in pieces
thread_local LogLevel t_partial_level = LogLevel::Info;

LogLevel from_ggml(ggml_log_level level, LogLevel continued) {
    switch (level) {
        case GGML_LOG_LEVEL_DEBUG: return LogLevel::Debug;
        case GGML_LOG_LEVEL_INFO:  return LogLevel::Info;
        case GGML_LOG_LEVEL_WARN:  return LogLevel::Warn;
        case GGML_LOG_LEVEL_ERROR: return LogLevel::Error;
        case GGML_LOG_LEVEL_CONT:  return continued;
        default:                   return LogLevel::Info;
    }
}

void emit(LogLevel level, const std::string & line) {
    // The first error since the last take is the cause; later ones are generic wrappers.
    if (level == LogLevel::Error && t_last_error.empty()) t_last_error = line;
    LogHandler handler;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (!g_handler || level < g_min_level) return;
        handler = g_handler;   // called outside the lock
    }
    handler(level, line);
}

void native_log(ggml_log_level ggml_level, const char * text, void *) {
    if (text == nullptr) return;
    LogLevel level = from_ggml(ggml_level, t_partial_level);
    if (t_partial.empty()) t_partial_level = level;
    t_partial += text;
    size_t start = 0, nl;
    while ((nl = t_partial.find('\n', start)) != std::string::npos) {
        emit(t_partial_level, t_partial.substr(start, nl - start));
        start = nl + 1;
    }
    t_partial.erase(0, start);
}

}  // namespace

void set_log_handler(LogHandler handler, LogLevel min_level) {
    install_native_log_hook();
    std::lock_guard<std::mutex> lock(g_mutex);
    g_handler = std::move(handler);
    g_min_level = g_handler ? min_level : LogLevel::None;
}

void log_message(LogLevel level, const std::string & line) { emit(level, line); }

std::string take_last_native_error() {
    std::string out;
    out.swap(t_last_error);
    return out;
}

void install_native_log_hook() {
    static std::once_flag once;
    std::call_once(once, [] { llama_log_set(native_log, nullptr); });
}

}  // namespace ohai
