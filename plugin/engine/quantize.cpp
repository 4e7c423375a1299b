#include "ohai/quantize.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "backend.h"
#include "child_process.h"
#include "gguf.h"
#include "gguf_check.h"
#include "isolate_protocol.h"
#include "llama.h"
#include "ohai/error.h"
#include "ohai/isolation.h"
#include "ohai/log.h"
#include "quantize_job.h"
#include "text_stream.h"

namespace ohai {
namespace {

const std::pair<const char *, llama_ftype> kTypes[] = {
    {"F32", LLAMA_FTYPE_ALL_F32},       {"F16", LLAMA_FTYPE_MOSTLY_F16},      {"BF16", LLAMA_FTYPE_MOSTLY_BF16},
    {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},  {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},    {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
    {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},  {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},    {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},
    {"Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S}, {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M}, {"Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L},
    {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S},
    {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},
};

const llama_ftype * find_type(const std::string & type) {
    for (const auto & t : kTypes)
        if (type == t.first) return &t.second;
    return nullptr;
}

// llama.cpp reports quantization progress only as log lines "[  3/ 30] name ...".
// One quantization at a time can observe them, so the progress hook is process-wide.
std::mutex g_quantize_mutex;
const QuantizeProgress * g_progress = nullptr;   // the caller's, alive for the whole call
std::thread::id g_quantize_thread;
ggml_log_callback g_prev_log = nullptr;
void * g_prev_log_data = nullptr;

void progress_log(ggml_log_level level, const char * text, void * data) {
    int done = 0, total = 0;
    // Only the quantizing thread reports progress; other threads' lines pass straight through.
    if (text && g_progress && std::this_thread::get_id() == g_quantize_thread &&
        std::sscanf(text, "[%d/%d]", &done, &total) == 2 && total > 0)
        (*g_progress)(done, total);
    if (g_prev_log) g_prev_log(level, text, data);
}

// Restores the log callback however quantize_in_this_process() leaves.
struct ProgressHook {
    explicit ProgressHook(const QuantizeProgress & progress) {
        g_progress = progress ? &progress : nullptr;
        g_quantize_thread = std::this_thread::get_id();
        llama_log_get(&g_prev_log, &g_prev_log_data);
        llama_log_set(progress_log, g_prev_log_data);
    }
    ~ProgressHook() {
        llama_log_set(g_prev_log, g_prev_log_data);
        g_progress = nullptr;
    }
};

bool same_file(const std::string & a, const std::string & b) {
    struct stat sa {}, sb {};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int64_t count_tensors(const std::string & path) {
    gguf_init_params gp{/*no_alloc =*/true, /*ctx =*/nullptr};
    gguf_context * ctx = gguf_init_from_file(path.c_str(), gp);
    if (ctx == nullptr) throw Error(ErrorCode::ModelLoad, "cannot read '" + path + "' as GGUF");
    const int64_t n = gguf_get_n_tensors(ctx);
    gguf_free(ctx);
    return n;
}

// A new file next to `dst`, created with O_EXCL so it is ours alone, and with mode 0666 so the
// umask gives it the permissions any new file of the user gets (mkstemp would force 0600).
std::string create_partial(const std::string & dst) {
    std::random_device rd;
    for (int attempt = 0; attempt < 100; ++attempt) {
        char suffix[16];
        std::snprintf(suffix, sizeof suffix, ".%06x.part", static_cast<unsigned>(rd()) & 0xFFFFFF);
        std::string path = dst + suffix;
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            ::close(fd);
            return path;
        }
        if (errno != EEXIST) throw Error(ErrorCode::InvalidArgument, "cannot write next to '" + dst + "': " + std::strerror(errno));
    }
    throw Error(ErrorCode::InvalidArgument, "cannot create a temporary file next to '" + dst + "'");
}

// Moves the finished file into place: rename() replaces; link() refuses an existing name, so a
// file that appeared at `dst` meanwhile is never replaced without `overwrite`.
void move_into_place(const std::string & partial, const std::string & dst, bool overwrite) {
    if (overwrite) {
        if (std::rename(partial.c_str(), dst.c_str()) == 0) return;
    } else if (::link(partial.c_str(), dst.c_str()) == 0) {
        ::unlink(partial.c_str());
        return;
    } else if (errno == EEXIST) {
        ::unlink(partial.c_str());
        throw Error(ErrorCode::InvalidArgument, "'" + dst + "' already exists (pass overwrite to replace it)");
    } else if (errno == EPERM || errno == EOPNOTSUPP || errno == EXDEV) {
        // A file system without hard links: check, then rename.
        struct stat st {};
        if (::lstat(dst.c_str(), &st) == 0) {
            ::unlink(partial.c_str());
            throw Error(ErrorCode::InvalidArgument, "'" + dst + "' already exists (pass overwrite to replace it)");
        }
        if (std::rename(partial.c_str(), dst.c_str()) == 0) return;
    }
    const int err = errno;
    ::unlink(partial.c_str());
    throw Error(ErrorCode::InvalidArgument, "cannot write '" + dst + "': " + std::strerror(err));
}

}  // namespace

std::vector<std::string> quantize_type_names() {
    std::vector<std::string> names;
    for (const auto & t : kTypes) names.emplace_back(t.first);
    return names;
}

void check_quantize_request(const std::string & src, const std::string & dst, const std::string & type, bool overwrite) {
    if (find_type(type) == nullptr) {
        std::string known;
        for (const auto & n : quantize_type_names()) known += (known.empty() ? "" : ", ") + n;
        throw Error(ErrorCode::InvalidArgument, "unknown quantization type '" + utf8_sanitize(type) + "' (known: " + known + ")");
    }
    for (const auto * p : {&src, &dst})
        if (p->find('\0') != std::string::npos) throw Error(ErrorCode::InvalidArgument, "a path contains a NUL byte");
    if (dst.empty()) throw Error(ErrorCode::InvalidArgument, "no output path");
    if (dst == src || same_file(src, dst)) throw Error(ErrorCode::InvalidArgument, "the output path must differ from the input");
    struct stat st {};
    if (::stat(dst.c_str(), &st) == 0) {
        // Never replace what is not a plain file: a FIFO, a device node (/dev/null as root), a directory.
        if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::InvalidArgument, "'" + dst + "' exists and is not a regular file");
        if (!overwrite) throw Error(ErrorCode::InvalidArgument, "'" + dst + "' already exists (pass overwrite to replace it)");
    }
    check_gguf_file(src);
    if (count_tensors(src) == 0)
        throw Error(ErrorCode::ModelLoad, "'" + src + "' holds no tensors (a vocabulary-only file?): nothing to quantize");
}

void quantize_in_this_process(const std::string & src, const std::string & dst, const std::string & type,
                              const QuantizeParams & params, const QuantizeProgress & progress,
                              const std::function<void(const std::string &)> & on_partial) {
    init_backend();
    check_quantize_request(src, dst, type, params.overwrite);
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = *find_type(type);
    qp.nthread = params.n_threads;
    qp.allow_requantize = params.allow_requantize;

    std::lock_guard<std::mutex> lock(g_quantize_mutex);
    const std::string partial = create_partial(dst);
    if (on_partial) on_partial(partial);
    take_last_native_error();
    uint32_t rc = 1;
    {
        ProgressHook hook(progress);
        try {
            rc = llama_model_quantize(src.c_str(), partial.c_str(), &qp);
        } catch (const std::exception & e) {
            ::unlink(partial.c_str());
            throw Error(ErrorCode::Internal, std::string("quantization failed: ") + e.what());
        }
    }
    if (rc != 0) {
        std::string why = take_last_native_error();
        ::unlink(partial.c_str());
        throw Error(ErrorCode::Internal, "quantization of '" + src + "' failed" + (why.empty() ? "" : ": " + why));
    }
    move_into_place(partial, dst, params.overwrite);
}

void quantize(const std::string & src, const std::string & dst, const std::string & type,
              const QuantizeParams & params, const QuantizeProgress & progress) {
    if (params.n_threads < 0 || params.n_threads > 512) throw Error(ErrorCode::InvalidArgument, "threads must be in [0, 512]");
    check_quantize_request(src, dst, type, params.overwrite);   // fail fast, before starting a process
    const std::string exe = isolate_executable();
    if (exe.empty()) {
        log_message(LogLevel::Warn, "ohai: ohai-isolate not found (set OHAI_ISOLATE): quantizing in this process");
        quantize_in_this_process(src, dst, type, params, progress, {});
        return;
    }
    ChildParams cp;
    cp.argv = {exe, "quantize", src, dst, type, std::to_string(params.n_threads), params.overwrite ? "1" : "0",
               params.allow_requantize ? "1" : "0", "--parent", std::to_string(::getpid())};
    cp.cancel = params.cancel;
    std::string partial;   // the child's temporary output, removed here if the child dies
    cp.on_stdout_line = [&](const std::string & line) {
        if (line.rfind(isolate::kPartialPrefix, 0) == 0) {
            partial = line.substr(std::strlen(isolate::kPartialPrefix));
            return;
        }
        int done = 0, total = 0;
        if (progress && line.rfind(isolate::kProgressPrefix, 0) == 0 &&
            std::sscanf(line.c_str() + std::strlen(isolate::kProgressPrefix), "%d %d", &done, &total) == 2)
            progress(done, total);
    };
    const ChildResult r = run_child(cp);
    if (r.ok()) return;
    // Only a name next to dst that the child announced: never anything else.
    if (!partial.empty() && partial.rfind(dst + ".", 0) == 0 && partial.size() > 5 &&
        partial.compare(partial.size() - 5, 5, ".part") == 0)
        ::unlink(partial.c_str());
    if (r.cancelled) throw Error(ErrorCode::Cancelled, "quantization was cancelled");
    ErrorCode code;
    const std::string message = utf8_sanitize(isolate::child_message(r.last_stderr_line()));
    if (r.started && r.signal == 0 && isolate::code_from_exit(r.exit_code, code) && !message.empty())
        throw Error(code, message);
    if (r.signal == SIGINT || r.signal == SIGTERM || r.exit_code == 128 + SIGINT || r.exit_code == 128 + SIGTERM)
        throw Error(ErrorCode::Cancelled, "quantization was stopped");
    throw Error(ErrorCode::Internal, "quantization failed in its process (" + r.describe() + ")" +
                                         (r.last_stderr_line().empty() ? "" : ": " + utf8_sanitize(r.last_stderr_line())));
}

}  // namespace ohai
