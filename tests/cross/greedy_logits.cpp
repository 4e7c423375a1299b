// ohai-greedy-logits: greedy decoding with the top logits of every step, as JSON, for
// tests/test_cross.py. It runs a cross-built engine under qemu and compares it with the native one
// (ohai.Model.generate / .logits): the same tokens, and where they part, by how much.
//     ohai-greedy-logits MODEL PROMPT N_TOKENS [--chat]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ohai/ohai.h"

int main(int argc, char ** argv) {
    if (argc < 4 || argc > 5 || (argc == 5 && std::strcmp(argv[4], "--chat") != 0)) {
        std::fprintf(stderr, "usage: ohai-greedy-logits MODEL PROMPT N_TOKENS [--chat]\n");
        return 2;
    }
    try {
        ohai::ModelParams mp;
        mp.path = argv[1];
        auto model = ohai::Model::load(mp);
        ohai::EngineParams ep;
        ep.n_ctx = 2048;   // as the Python side of the comparison
        ep.n_threads = 2;
        ohai::Engine engine(model, ep);
        const std::string prompt =
            argc == 5 ? ohai::apply_chat_template(*model, {{"user", argv[2]}}) : std::string(argv[2]);

        ohai::GenerateRequest req;
        req.prompt_tokens = model->tokenize(prompt, true, true);
        req.max_tokens = std::atoi(argv[3]);
        req.sampling.temperature = 0.0f;
        const ohai::Completion c = engine.generate(req, [](const std::string &) { return true; });

        // Every step's logits in one pass: the prompt as one batch, then token by token.
        std::vector<ohai::Token> all = req.prompt_tokens;
        all.insert(all.end(), c.tokens.begin(), c.tokens.end());
        const std::vector<float> logits = engine.logits(all, req.prompt_tokens.size());
        const size_t n_vocab = static_cast<size_t>(model->info().n_vocab);

        nlohmann::json top = nlohmann::json::array();
        for (size_t i = 0; i < c.tokens.size(); ++i) {
            const float * row = logits.data() + (req.prompt_tokens.size() - 1 + i) * n_vocab;
            std::vector<std::pair<float, int>> best;   // the 5 largest, largest first
            for (size_t t = 0; t < n_vocab; ++t) {
                if (best.size() < 5 || row[t] > best.back().first) {
                    best.emplace_back(row[t], static_cast<int>(t));
                    for (size_t k = best.size() - 1; k > 0 && best[k].first > best[k - 1].first; --k)
                        std::swap(best[k], best[k - 1]);
                    if (best.size() > 5) best.pop_back();
                }
            }
            nlohmann::json step = nlohmann::json::array();
            for (const auto & [logit, token] : best) step.push_back({token, logit});
            top.push_back(step);
        }
        nlohmann::json out;
        out["prompt_tokens"] = req.prompt_tokens;
        out["tokens"] = c.tokens;
        out["text"] = c.text;
        out["top"] = top;
        std::printf("%s\n", out.dump().c_str());
    } catch (const std::exception & e) {
        std::fprintf(stderr, "ohai-greedy-logits: %s\n", e.what());
        return 1;
    }
    return 0;
}
