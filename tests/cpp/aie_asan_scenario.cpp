// One ai_engine scenario for AddressSanitizer/LeakSanitizer (tests/test_aie_plugin.py runs it):
// the plugin built with -fsanitize=address, loaded by our host the way ai_engine's server loads
// it, through prepare, generation, streams, errors, Release with work in flight, and unload.
// Exit 0 = every step answered as expected; ASan reports and exits non-zero on any invalid
// access, and LeakSanitizer on any leak at exit.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "plugin_host.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string & what, const std::string & detail = {}) {
    std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    if (!ok) ++failures;
}

bool has(const std::string & text, const std::string & part) { return text.find(part) != std::string::npos; }

}  // namespace

int main(int argc, char ** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: aie_asan_scenario PLUGIN_LIBRARY MODEL_NAME (OHAI_AIE_MODEL_DIR: its folder)\n");
        return 2;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);   // the log survives an ASan abort
    using std::chrono::milliseconds;
    const std::string model = argv[2];
    {
        ohai::aie::PluginHost host(argv[1]);
        const long long a = host.new_transaction_id(), b = host.new_transaction_id();
        const std::string prepare = "{\"model\": \"" + model + "\", \"n_ctx\": 512, \"threads\": 2}";
        auto p = host.prepare(a, prepare);
        expect(p.retcode == 0 && has(p.output, "\"n_ctx\":512"), "prepare a", p.output);
        p = host.prepare(b, prepare);
        expect(p.retcode == 0, "prepare b (shares a's engine)", p.output);

        auto r = host.process_async(a, R"({"op":"generate","prompt":"The capital of France is","max_tokens":8,"temperature":0})",
                                    milliseconds(120000));
        expect(r.retcode == 0 && r.event == 0 && has(r.result, "\"finish_reason\":\"length\""), "generate", r.result);

        r = host.process_async(a, R"({"op":"stream_start","prompt":"Once upon a time","max_tokens":12,"temperature":0})",
                               milliseconds(60000));
        expect(r.retcode == 0 && has(r.result, "\"stream\":"), "stream_start", r.result);
        const std::string stream = r.result.substr(r.result.find(':') + 1, r.result.find('}') - r.result.find(':') - 1);
        bool done = false;
        for (int i = 0; i < 200 && !done; ++i) {
            r = host.process_async(a, "{\"op\":\"stream_next\",\"stream\":" + stream + ",\"wait_ms\":2000}", milliseconds(60000));
            done = r.event != 0 || has(r.result, "\"done\":true");
        }
        expect(done && r.event == 0, "stream read to the end", r.result);

        // A stream whose end arrives while a poll waits (a stop string: the last tokens give no text).
        r = host.process_async(a, R"({"op":"stream_start","prompt":"The capital of France is","max_tokens":64,"temperature":0,"stop":[" United"]})",
                               milliseconds(60000));
        const std::string stopping = r.result.substr(r.result.find(':') + 1, r.result.find('}') - r.result.find(':') - 1);
        done = false;
        for (int i = 0; i < 200 && !done; ++i) {
            r = host.process_async(a, "{\"op\":\"stream_next\",\"stream\":" + stopping + ",\"wait_ms\":5000}", milliseconds(60000));
            done = r.event != 0 || has(r.result, "\"done\":true");
        }
        expect(done && has(r.result, "\"finish_reason\":\"stop\""), "stream ended by a stop string while polled", r.result);

        for (const char * bad : {"\xff\xfe", "[1]", "{\"op\":\"fly\"}", "{\"op\":\"generate\"}",
                                 "{\"op\":\"detokenize\",\"tokens\":[-1]}", "{\"op\":\"stream_next\",\"stream\":99}"}) {
            r = host.process_async(a, bad, milliseconds(60000));
            expect(r.event == 1 && has(r.result, "\"error\""), "error answered", r.result);
        }
        r = host.process_async(a, R"({"op":"embed","input":["a cat","a dog"]})", milliseconds(60000));
        expect(r.event == 0 && has(r.result, "\"embeddings\""), "embed");
        expect(host.set_option(1001, R"({"temperature":0.5})").retcode == 0, "set_option");
        auto o = host.get_option(2001, "{}");
        expect(o.retcode == 0 && has(o.output, "\"transactions\":2"), "get_option stats", o.output);

        // Work in flight when its transaction goes: a waiting poll and a long generation.
        r = host.process_async(b, R"({"op":"stream_start","prompt":"Tell me a story","max_tokens":400})", milliseconds(60000));
        const std::string open_stream = r.result.substr(r.result.find(':') + 1, r.result.find('}') - r.result.find(':') - 1);
        auto poll = host.start_async(b, "{\"op\":\"stream_next\",\"stream\":" + open_stream + ",\"wait_ms\":0}");
        auto long_generation = host.start_async(b, R"({"op":"generate","prompt":"Tell me a story","max_tokens":400})");
        expect(host.release(false, b, "{}").retcode == 0, "release b with work in flight");
        host.wait(long_generation, milliseconds(30000));
        r = host.finish(long_generation);
        expect(r.event == 1 && has(r.result, "cancelled"), "in-flight generate answered before Release returned", r.result);
        host.wait(poll, milliseconds(30000));
        host.finish(poll);

        // Unload with a stream and a generation still running on a.
        host.process_async(a, R"({"op":"stream_start","prompt":"Tell me a story","max_tokens":400})", milliseconds(60000));
        auto unfinished = host.start_async(a, R"({"op":"generate","prompt":"Tell me a story","max_tokens":400})");
        host.close();
        host.wait(unfinished, milliseconds(1000));
        host.finish(unfinished);
        expect(host.contract_violations().empty(), "no contract violations");
    }
    std::printf("%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
