// The scheduler through the engine's public API, on a real model ($OHAI_TEST_MODEL; `make test`
// sets it to the default model): admission and the queue bound, cancellation, prefix reuse,
// preemption under KV pressure, and the statistics that report them.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "ohai/ohai.h"

namespace {

std::shared_ptr<ohai::Model> g_model;

ohai::GenerateRequest greedy(const std::string & prompt, int32_t max_tokens) {
    ohai::GenerateRequest r;
    r.prompt = prompt;
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    return r;
}

ohai::EngineParams params(uint32_t n_ctx, uint32_t parallel, uint32_t max_queued) {
    ohai::EngineParams p;
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.n_parallel = parallel;
    p.max_queued = max_queued;
    return p;
}

// Waits until `done` holds (the worker updates statistics between steps).
template <typename Pred> bool eventually(Pred done) {
    for (int i = 0; i < 600; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

void admission_and_queue_bound() {
    ohai::Engine engine(g_model, params(512, 1, 1));
    auto a = engine.submit(greedy("Once upon a time, in a land far away, there lived", 200));
    CHECK(eventually([&] { return engine.stats().running == 1; }));
    auto b = engine.submit(greedy("Name a color.", 4));   // waits: the only slot is taken
    CHECK(engine.stats().queued == 1);
    bool overloaded = false;
    try {
        engine.submit(greedy("Name a fruit.", 4));
    } catch (const ohai::Error & e) {
        overloaded = e.code() == ohai::ErrorCode::Overloaded;
    }
    CHECK(overloaded);
    CHECK(engine.stats().requests_rejected == 1);
    a->cancel();   // frees the slot at once: b runs
    CHECK(a->wait().finish_reason == ohai::FinishReason::Cancelled);
    CHECK(b->wait().usage.completion_tokens > 0);
    // Statistics are published between steps, right after the results.
    CHECK(eventually([&] { return engine.stats().requests_completed == 1; }));
    const auto s = engine.stats();
    CHECK(s.requests_cancelled == 1);
    CHECK(s.running == 0 && s.queued == 0);
}

void cancel_leaves_the_others_alone() {
    ohai::Engine alone(g_model, params(1024, 1, 8));
    const std::string expected = alone.generate(greedy("The three primary colors are", 24)).text;
    alone.close();
    ohai::Engine engine(g_model, params(1024, 4, 8));
    auto keep = engine.submit(greedy("The three primary colors are", 24));
    auto drop = engine.submit(greedy("Once upon a time, in a castle by the sea,", 200));
    std::string piece;
    while (drop->next(piece, std::chrono::milliseconds(1000)) == ohai::Generation::Poll::Timeout) {}
    drop->cancel();
    CHECK(drop->wait().finish_reason == ohai::FinishReason::Cancelled);
    CHECK(keep->wait().text == expected);
}

void prefix_is_reused() {
    ohai::Engine engine(g_model, params(1024, 2, 8));
    const std::string system = "You are a careful assistant. Answer in one short sentence. Question: ";
    const auto first = engine.generate(greedy(system + "What is the capital of Italy?", 8));
    CHECK(first.usage.cached_prompt_tokens == 0);
    const auto again = engine.generate(greedy(system + "What is the capital of Italy?", 8));
    CHECK(again.usage.cached_prompt_tokens == again.usage.prompt_tokens - 1);
    CHECK(again.text == first.text);
    const auto other = engine.generate(greedy(system + "What is the capital of Spain?", 8));
    CHECK(other.usage.cached_prompt_tokens >= 12);
    CHECK(other.usage.cached_prompt_tokens < other.usage.prompt_tokens);
    CHECK(eventually([&] { return engine.stats().requests_completed == 3; }));
    CHECK(engine.stats().prompt_tokens_cached ==
          static_cast<uint64_t>(again.usage.cached_prompt_tokens + other.usage.cached_prompt_tokens));
}

void preemption_resumes_instead_of_failing() {
    // 4 blocks of 32 cells for 3 requests that each grow to ~100 tokens: someone must yield.
    auto p = params(128, 3, 8);
    ohai::Engine engine(g_model, p);
    std::vector<std::shared_ptr<ohai::Generation>> gens;
    for (const char * prompt : {"Count from one to fifty in words:", "List many animals, one per line:",
                                "Write the alphabet with spaces:"})
        gens.push_back(engine.submit(greedy(prompt, 80)));
    for (auto & g : gens) {
        const auto c = g->wait();
        CHECK(c.finish_reason != ohai::FinishReason::Cancelled);
        CHECK(c.usage.completion_tokens > 0);
    }
    CHECK(eventually([&] { return engine.stats().requests_completed == 3; }));
    const auto s = engine.stats();
    std::printf("preemption: %llu preemptions, %llu completed, %llu cancelled, %llu failed\n",
                (unsigned long long)s.preemptions, (unsigned long long)s.requests_completed,
                (unsigned long long)s.requests_cancelled, (unsigned long long)s.requests_failed);
    CHECK(s.preemptions >= 1);
    CHECK(s.requests_failed == 0);
    CHECK(s.requests_completed == 3);
}

void push_path_delivers_pieces_and_result() {
    ohai::Engine engine(g_model, params(512, 2, 8));
    const auto polled = engine.generate(greedy("The three primary colors are", 16));
    std::mutex mutex;
    std::string pushed;
    int done_calls = 0;
    std::thread::id worker_thread;
    auto gen = engine.submit(greedy("The three primary colors are", 16),
                             {[&](const std::string & piece) {
                                  std::lock_guard<std::mutex> lock(mutex);
                                  pushed += piece;
                                  worker_thread = std::this_thread::get_id();
                              },
                              [&](const ohai::Completion * c, const ohai::Error * e) {
                                  std::lock_guard<std::mutex> lock(mutex);
                                  ++done_calls;
                                  CHECK(c != nullptr && e == nullptr);
                                  if (c) CHECK(c->text == pushed);
                              }});
    const auto result = gen->wait();
    CHECK(eventually([&] {
        std::lock_guard<std::mutex> lock(mutex);
        return done_calls == 1;
    }));
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(pushed == polled.text && result.text == polled.text);
    CHECK(worker_thread != std::this_thread::get_id());
    std::string piece;
    CHECK(gen->next(piece, std::chrono::milliseconds(10)) == ohai::Generation::Poll::Done);   // nothing queued
}

}  // namespace

int main() {
    const char * path = std::getenv("OHAI_TEST_MODEL");
    if (path == nullptr || *path == '\0') {
        std::printf("test_scheduler: skipped (set OHAI_TEST_MODEL to a GGUF model)\n");
        return 77;
    }
    ohai::ModelParams mp;
    mp.path = path;
    g_model = ohai::Model::load(mp);
    const std::pair<const char *, void (*)()> tests[] = {
        {"admission_and_queue_bound", admission_and_queue_bound},
        {"cancel_leaves_the_others_alone", cancel_leaves_the_others_alone},
        {"prefix_is_reused", prefix_is_reused},
        {"preemption_resumes_instead_of_failing", preemption_resumes_instead_of_failing},
        {"push_path_delivers_pieces_and_result", push_path_delivers_pieces_and_result},
    };
    for (const auto & [name, test] : tests) {
        const auto t0 = std::chrono::steady_clock::now();
        test();
        std::printf("%s: %.1f s\n", name, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return finish("test_scheduler");
}
