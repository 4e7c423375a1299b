// ohai-cli: the native equivalent of `ohai run`, for devices without Python.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>

#include "ohai/ohai.h"
#include "ohai/system.h"
#include "request_json.h"

namespace {

const char * kUsage =
    "usage: ohai-cli -m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [-t THREADS] [-c N_CTX] [--chat] [--json] [--device D]\n"
    "       ohai-cli --info [-m MODEL] [--device D]\n"
    "  -m, --model      GGUF model file\n"
    "  -p, --prompt     prompt text ('-' reads standard input)\n"
    "  -n, --max-tokens tokens to generate (default 256)\n"
    "      --temp       temperature, 0 = greedy (default 0.8)\n"
    "      --seed       sampling seed (default random)\n"
    "  -t, --threads    CPU threads (default all)\n"
    "  -c, --ctx        context length (default min(training, 4096))\n"
    "      --chat       wrap the prompt in the model's chat template as a user message\n"
    "      --json       print one JSON object (text, usage, timings) instead of streaming\n"
    "      --device D   auto (an NNRt accelerator if there is one), cpu, nnrt, nnrt:<name> (default auto)\n"
    "      --info       print the CPU instruction sets this build uses and the CPU offers (and, with -m,\n"
    "                   the model) as one JSON object, then exit\n";

struct Options {
    std::string model, prompt, device = "auto";
    int max_tokens = 256;
    float temp = 0.8f;
    long long seed = -1;
    int threads = 0;
    int ctx = 0;
    bool chat = false, json = false, have_prompt = false, info = false;
};

[[noreturn]] void die(const std::string & msg) {
    std::fprintf(stderr, "ohai-cli: error: %s\n", msg.c_str());
    std::exit(1);
}

long long parse_int(const char * flag, const char * v, long long lo, long long hi) {
    char * end = nullptr;
    errno = 0;
    long long x = std::strtoll(v, &end, 10);
    if (errno || end == v || *end) die(std::string("invalid integer for ") + flag + ": '" + v + "'");
    if (x < lo || x > hi)
        die(std::string(flag) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

float parse_float(const char * flag, const char * v) {
    char * end = nullptr;
    float x = std::strtof(v, &end);
    if (end == v || *end) die(std::string("invalid number for ") + flag + ": '" + v + "'");
    return x;
}

Options parse(int argc, char ** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char * {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "-h" || a == "--help") { std::fputs(kUsage, stdout); std::exit(0); }
        else if (a == "-m" || a == "--model") o.model = value();
        else if (a == "-p" || a == "--prompt") { o.prompt = value(); o.have_prompt = true; }
        else if (a == "-n" || a == "--max-tokens") o.max_tokens = static_cast<int>(parse_int("-n", value(), -1, INT32_MAX));
        else if (a == "--temp") o.temp = parse_float("--temp", value());
        else if (a == "--seed") o.seed = parse_int("--seed", value(), 0, 0xFFFFFFFELL);
        else if (a == "-t" || a == "--threads") o.threads = static_cast<int>(parse_int("-t", value(), 0, 512));
        else if (a == "-c" || a == "--ctx") o.ctx = static_cast<int>(parse_int("-c", value(), 0, 1 << 20));
        else if (a == "--chat") o.chat = true;
        else if (a == "--json") o.json = true;
        else if (a == "--device") o.device = value();
        else if (a == "--info") o.info = true;
        else die("unknown option '" + a + "' (see --help)");
    }
    if (o.info) return o;
    if (o.model.empty()) die("no model given (-m MODEL)");
    if (!o.have_prompt) die("no prompt given (-p PROMPT)");
    if (o.prompt == "-") {
        o.prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    return o;
}

// The shape of `ohai info --json`'s "system" (ohai.system_info()).
ohai::wire::Json system_json() {
    const ohai::SystemInfo info = ohai::system_info();
    ohai::wire::Json features = ohai::wire::Json::object();
    for (const auto & f : info.features)
        features[f.name] = {{"built", f.built}, {"supported", f.supported}, {"used", f.built && f.supported}};
    ohai::wire::Json j;
    j["cpu_target"] = info.cpu_target;
    j["amx_enabled"] = info.amx_enabled;
    j["cpu_model"] = info.cpu_model;
    j["features"] = features;
    j["missing"] = info.missing;
    j["llama_system_info"] = info.llama_system_info;
    return j;
}

// --info: works on any CPU (the system part runs no kernel), so it also says why a build refuses one.
int print_info(const Options & o) {
    ohai::wire::Json j;
    if (!o.model.empty()) {
        ohai::ModelParams mp;
        mp.path = o.model;
        mp.device = o.device;
        const auto model = ohai::Model::load(mp);
        j["model"] = ohai::wire::model_info_json(model->info(), 0);
        j["model"].erase("n_ctx");   // no context is made here
    }
    j["system"] = system_json();
    std::printf("%s\n", ohai::wire::dump(j).c_str());
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    const Options o = parse(argc, argv);
    try {
        if (o.info) return print_info(o);
        ohai::ModelParams mp;
        mp.path = o.model;
        mp.device = o.device;
        auto model = ohai::Model::load(mp);
        ohai::EngineParams ep;
        ep.n_ctx = static_cast<uint32_t>(o.ctx);
        ep.n_threads = o.threads;
        ohai::Engine engine(model, ep);

        ohai::GenerateRequest req;
        req.prompt = o.chat ? ohai::apply_chat_template(*model, {{"user", o.prompt}}) : o.prompt;
        req.max_tokens = o.max_tokens;
        req.sampling.temperature = o.temp;
        if (o.seed >= 0) req.sampling.seed = static_cast<uint32_t>(o.seed);

        bool write_failed = false;
        ohai::Completion c = engine.generate(req, [&](const std::string & piece) {
            if (!o.json) {
                // A full disk or a closed pipe stops the generation: nobody can read the rest.
                write_failed = std::fwrite(piece.data(), 1, piece.size(), stdout) != piece.size() ||
                               std::fflush(stdout) != 0;
            }
            return !write_failed;
        });
        if (o.json) std::printf("%s\n", ohai::wire::dump(ohai::wire::completion_json(c)).c_str());
        else std::fputc('\n', stdout);
        if (write_failed || std::fflush(stdout) != 0 || std::ferror(stdout))
            die(std::string("cannot write the output: ") + std::strerror(errno ? errno : EIO));
    } catch (const ohai::Error & e) {
        die(e.what());
    } catch (const std::exception & e) {
        die(e.what());
    }
    return 0;
}
