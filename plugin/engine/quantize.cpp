#include "ohai/quantize.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <mutex>
#include <utility>

#include "backend.h"
#include "gguf_check.h"
#include "llama.h"
#include "ohai/error.h"
#include "ohai/log.h"

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

// Restores the log callback however quantize() leaves.
struct ProgressHook {
    ProgressHook(const QuantizeProgress & progress) {
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

}  // namespace

std::vector<std::string> quantize_type_names() {
    std::vector<std::string> names;
    for (const auto & t : kTypes) names.emplace_back(t.first);
    return names;
}

void quantize(const std::string & src, const std::string & dst, const std::string & type,
              const QuantizeParams & params, const QuantizeProgress & progress) {
    const llama_ftype * ftype = nullptr;
    for (const auto & t : kTypes)
        if (type == t.first) ftype = &t.second;
    if (ftype == nullptr) {
        std::string known;
        for (const auto & n : quantize_type_names()) known += (known.empty() ? "" : ", ") + n;
        throw Error(ErrorCode::InvalidArgument, "unknown quantization type '" + type + "' (known: " + known + ")");
    }
    if (dst.empty()) throw Error(ErrorCode::InvalidArgument, "no output path");
    if (dst == src || same_file(src, dst)) throw Error(ErrorCode::InvalidArgument, "the output path must differ from the input");
    init_backend();
    check_gguf_file(src);

    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = *ftype;
    qp.nthread = params.n_threads;
    qp.allow_requantize = params.allow_requantize;

    // Written to a new file next to `dst` and renamed into place: a model that has `dst`
    // memory-mapped keeps its old file, and a failure leaves no half-written output.
    std::string partial = dst + ".XXXXXX";
    const int fd = ::mkstemp(partial.data());
    if (fd < 0) throw Error(ErrorCode::InvalidArgument, "cannot write next to '" + dst + "': " + std::strerror(errno));
    ::close(fd);
    std::lock_guard<std::mutex> lock(g_quantize_mutex);
    take_last_native_error();
    uint32_t rc = 1;
    {
        ProgressHook hook(progress);
        try {
            rc = llama_model_quantize(src.c_str(), partial.c_str(), &qp);
        } catch (const std::exception & e) {
            std::remove(partial.c_str());
            throw Error(ErrorCode::Internal, std::string("quantization failed: ") + e.what());
        }
    }
    if (rc != 0) {
        std::string why = take_last_native_error();
        std::remove(partial.c_str());
        throw Error(ErrorCode::Internal, "quantization of '" + src + "' failed" + (why.empty() ? "" : ": " + why));
    }
    if (std::rename(partial.c_str(), dst.c_str()) != 0) {
        std::remove(partial.c_str());
        throw Error(ErrorCode::InvalidArgument, "cannot write '" + dst + "': " + std::strerror(errno));
    }
}

}  // namespace ohai
