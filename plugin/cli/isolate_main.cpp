// ohai-isolate: the engine's helper process (see ohai/isolation.h). Not meant to be run by hand.
//   ohai-isolate probe MODEL [--parent PID]
//       load MODEL and decode a short prompt plus two generated tokens; exit 0 when that worked
//   ohai-isolate quantize SRC DST TYPE THREADS OVERWRITE(0|1) REQUANTIZE(0|1) [--parent PID]
//       quantize, printing "progress <done> <total>" lines; on SIGTERM/SIGINT/SIGHUP (or the
//       parent's death) remove the partial output and exit
// An ohai::Error ends it with "ohai-isolate: error: <message>" and exit code 10 + its ErrorCode.
// OHAI_ISOLATE_FAULT=abort|segv|hang|error makes `probe` fail that way after loading: a test hook
// for the engine's handling of a probe that dies, since no known-bad file should get that far.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "isolate_protocol.h"
#include "ohai/ohai.h"
#include "quantize_job.h"

namespace {

char g_partial[4096];   // the file to remove if a signal ends the quantization

void remove_partial_and_exit(int sig) {
    if (g_partial[0] != '\0') ::unlink(g_partial);
    ::_exit(128 + sig);
}

void follow_parent(const char * pid_text) {
    // Die with the parent (a killed Python or service must not leave a quantizer running),
    // through the same handler that removes the partial file.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (pid_text && std::atol(pid_text) != static_cast<long>(::getppid())) remove_partial_and_exit(SIGTERM);
}

void install_cleanup_handlers() {
    struct sigaction sa {};
    sa.sa_handler = remove_partial_and_exit;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

void inject_fault() {
    const char * fault = std::getenv("OHAI_ISOLATE_FAULT");
    if (fault == nullptr) return;
    const std::string f = fault;
    if (f == "abort") std::abort();
    if (f == "segv") ::raise(SIGSEGV);
    if (f == "hang") for (;;) ::pause();
    if (f == "error") throw ohai::Error(ohai::ErrorCode::Internal, "injected failure");
}

int probe(const std::string & path) {
    ohai::ModelParams mp;
    mp.path = path;
    mp.probe = false;   // this is the probe
    auto model = ohai::Model::load(mp);
    inject_fault();
    ohai::EngineParams ep;
    ep.n_ctx = 256;
    // Several threads, as a real run would use: some faults only show with more than one.
    ep.n_threads = static_cast<int32_t>(std::clamp(std::thread::hardware_concurrency(), 2u, 4u));
    ohai::Engine engine(model, ep);
    ohai::GenerateRequest req;
    req.prompt = "The quick brown fox jumps over the lazy dog. 12345";
    req.max_tokens = 2;
    req.sampling.temperature = 0;
    auto tokens = model->tokenize(req.prompt, true, false);
    if (tokens.size() < 2) {
        // A vocabulary that cannot tokenize the text: still run a batch of several tokens.
        req.prompt_tokens.clear();
        for (int32_t i = 0; i < 8; ++i) req.prompt_tokens.push_back(i % model->info().n_vocab);
    }
    engine.generate(req);
    engine.close();
    return 0;
}

int quantize(char ** argv) {
    install_cleanup_handlers();
    ohai::QuantizeParams p;
    p.n_threads = std::atoi(argv[3]);
    p.overwrite = std::strcmp(argv[4], "1") == 0;
    p.allow_requantize = std::strcmp(argv[5], "1") == 0;
    ohai::quantize_in_this_process(argv[0], argv[1], argv[2], p,
        [](int done, int total) {
            std::printf("%s%d %d\n", ohai::isolate::kProgressPrefix, done, total);
            std::fflush(stdout);
        },
        [](const std::string & partial) {
            // Written before the file has any content; the handler only ever sees a whole string.
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_BLOCK, &all, &old);
            std::snprintf(g_partial, sizeof g_partial, "%s", partial.c_str());
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
            // The parent removes it too if this process dies in a way no handler sees (SIGKILL, a crash).
            std::printf("%s%s\n", ohai::isolate::kPartialPrefix, partial.c_str());
            std::fflush(stdout);
        });
    g_partial[0] = '\0';
    return 0;
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "%sohai-isolate is the engine's helper process; see ohai/isolation.h\n", ohai::isolate::kErrorPrefix);
    std::exit(2);
}

}  // namespace

int main(int argc, char ** argv) {
    std::vector<char *> args(argv + 1, argv + argc);
    const char * parent = nullptr;
    for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (std::strcmp(args[i], "--parent") == 0) {
            parent = args[i + 1];
            args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
            break;
        }
    }
    if (parent) follow_parent(parent);
    if (args.empty()) usage();
    const std::string command = args[0];
    try {
        if (command == "probe" && args.size() == 2) return probe(args[1]);
        if (command == "quantize" && args.size() == 7) return quantize(args.data() + 1);
        usage();
    } catch (const ohai::Error & e) {
        std::fprintf(stderr, "%s%s\n", ohai::isolate::kErrorPrefix, e.what());
        return ohai::isolate::exit_code_for(e.code());
    } catch (const std::exception & e) {
        std::fprintf(stderr, "%s%s\n", ohai::isolate::kErrorPrefix, e.what());
        return ohai::isolate::exit_code_for(ohai::ErrorCode::Internal);
    }
}
