#include "ohai/engine.h"

#include <algorithm>
#include <cmath>

#include "generation_impl.h"
#include "sampler.h"
#include "scheduler.h"

namespace ohai {
namespace {

constexpr uint32_t kDefaultCtx = 4096;
constexpr int32_t kMaxThreads = 512;   // GGML_MAX_N_THREADS
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopLength = 256;

uint32_t resolve_n_ctx(const Model & model, uint32_t requested) {
    if (requested > 0) return requested;
    const int32_t train = model.info().n_ctx_train;
    return train > 0 ? std::min<uint32_t>(static_cast<uint32_t>(train), kDefaultCtx) : kDefaultCtx;
}

constexpr uint32_t kDefaultParallel = 4;   // see EngineParams::n_parallel

}  // namespace

const char * kv_type_name(KvType type) {
    switch (type) {
        case KvType::F16:  return "f16";
        case KvType::Q8_0: return "q8_0";
        case KvType::Q4_0: return "q4_0";
    }
    return "f16";
}

KvType parse_kv_type(const std::string & name) {
    std::string lower;
    for (char c : name) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (KvType t : {KvType::F16, KvType::Q8_0, KvType::Q4_0})
        if (lower == kv_type_name(t)) return t;
    throw Error(ErrorCode::InvalidArgument, "kv_type must be one of f16, q8_0, q4_0");
}

Engine::Engine(std::shared_ptr<Model> model, const EngineParams & params) : model_(std::move(model)) {
    if (!model_) throw Error(ErrorCode::InvalidArgument, "no model");
    if (model_->vocab_only()) throw Error(ErrorCode::InvalidState, "the model was loaded vocab-only: it can tokenize but not generate");
    if (params.n_threads < 0 || params.n_threads > kMaxThreads)
        throw Error(ErrorCode::InvalidArgument, "threads must be in [0, " + std::to_string(kMaxThreads) + "]");
    if (params.n_ctx > 0 && params.n_ctx < 8) throw Error(ErrorCode::InvalidArgument, "n_ctx must be at least 8");
    if (params.n_ctx > (1u << 20)) throw Error(ErrorCode::InvalidArgument, "n_ctx is larger than 1M tokens");
    auto bad = [](const std::string & why) { throw Error(ErrorCode::InvalidArgument, why); };
    if (params.n_parallel > 64) bad("parallel must be in [0, 64] (0 = the default, " + std::to_string(kDefaultParallel) + ")");
    if (params.n_batch < 1 || params.n_batch > 65536) bad("n_batch must be in [1, 65536]");
    if (params.max_queued > 1000000) bad("max_queued must be at most 1000000");
    if (params.kv_block < 1 || params.kv_block > 4096) bad("kv_block must be in [1, 4096]");
    params_ = params;
    if (params_.n_parallel == 0) params_.n_parallel = kDefaultParallel;
    n_ctx_ = resolve_n_ctx(*model_, params.n_ctx);
    params_.n_ctx = n_ctx_;
    scheduler_ = std::make_unique<Scheduler>(model_, params_, n_ctx_);
}

Engine::~Engine() { close(); }

EngineStats Engine::stats() const { return scheduler_->stats(); }

void Engine::close() {
    if (scheduler_) scheduler_->close();
}

std::shared_ptr<Generation> Engine::submit(const GenerateRequest & request, GenerationCallbacks callbacks) {
    scheduler_->require_same_process();
    check_sampling(request.sampling);
    if (request.stop.size() > kMaxStopStrings)
        throw Error(ErrorCode::InvalidArgument, "at most " + std::to_string(kMaxStopStrings) + " stop strings");
    for (const auto & s : request.stop)
        if (s.size() > kMaxStopLength)
            throw Error(ErrorCode::InvalidArgument, "stop strings are limited to " + std::to_string(kMaxStopLength) + " bytes");

    auto impl = std::make_unique<Generation::Impl>();
    impl->request = request;
    impl->callbacks = std::move(callbacks);
    if (!request.prompt_tokens.empty()) {
        model_->check_tokens(request.prompt_tokens);
        impl->prompt = request.prompt_tokens;
    } else {
        impl->prompt = model_->tokenize(request.prompt, request.add_special, request.parse_special);
    }
    if (impl->prompt.empty()) throw Error(ErrorCode::InvalidArgument, "the prompt is empty");
    if (impl->prompt.size() >= n_ctx_)
        throw Error(ErrorCode::ContextOverflow, "the prompt is " + std::to_string(impl->prompt.size()) +
                                                " tokens, the context holds " + std::to_string(n_ctx_) +
                                                " (one more is needed to generate)");
    auto generation = std::make_shared<Generation>(std::move(impl));
    scheduler_->enqueue(generation);
    return generation;
}

Completion Engine::generate(const GenerateRequest & request, const std::function<bool(const std::string &)> & on_piece) {
    auto generation = submit(request);
    std::string piece;
    for (;;) {
        const auto poll = generation->next(piece, std::chrono::milliseconds(100));
        if (poll == Generation::Poll::Done) break;
        if (poll == Generation::Poll::Piece && on_piece && !on_piece(piece)) generation->cancel();
    }
    return generation->wait();
}

std::vector<std::vector<float>> Engine::embed(const std::vector<std::string> & texts, bool normalize) {
    scheduler_->require_same_process();
    std::vector<std::vector<Token>> tokenized;
    tokenized.reserve(texts.size());
    for (const auto & text : texts) {
        auto tokens = model_->tokenize(text, true, false);
        if (tokens.empty()) throw Error(ErrorCode::InvalidArgument, "cannot embed an empty text");
        if (tokens.size() > n_ctx_)
            throw Error(ErrorCode::ContextOverflow, "a text of " + std::to_string(tokens.size()) +
                                                    " tokens does not fit the context of " + std::to_string(n_ctx_));
        tokenized.push_back(std::move(tokens));
    }
    const int32_t n_embd = model_->info().n_embd;
    std::vector<std::vector<float>> out;
    scheduler_->run([&](WorkerContext & wc) {
        size_t longest = 0;
        for (const auto & tokens : tokenized) longest = std::max(longest, tokens.size());
        llama_context * c = wc.embedding_context(static_cast<uint32_t>(longest));
        for (const auto & tokens : tokenized) {
            llama_memory_clear(llama_get_memory(c), true);
            if (wc.decode(c, tokens, 0, tokens.size(), true) != 0)
                throw Error(ErrorCode::Internal, "llama_decode failed while embedding");
            const float * e = llama_get_embeddings_seq(c, 0);
            if (e == nullptr) throw Error(ErrorCode::Internal, "the model returned no pooled embedding");
            std::vector<float> v(e, e + n_embd);
            if (normalize) {
                double norm = 0;
                for (float x : v) norm += static_cast<double>(x) * x;
                norm = std::sqrt(norm);
                if (norm > 0) for (float & x : v) x = static_cast<float>(x / norm);
            }
            out.push_back(std::move(v));
        }
    });
    return out;
}

std::vector<float> Engine::logits(const std::vector<Token> & tokens, size_t prompt_tokens) {
    scheduler_->require_same_process();
    model_->check_tokens(tokens);
    if (tokens.empty()) throw Error(ErrorCode::InvalidArgument, "no tokens");
    if (tokens.size() > n_ctx_) throw Error(ErrorCode::ContextOverflow, "more tokens than the context holds");
    prompt_tokens = std::clamp<size_t>(prompt_tokens, 1, tokens.size());
    const size_t n_vocab = static_cast<size_t>(model_->info().n_vocab);
    std::vector<float> out(tokens.size() * n_vocab);
    scheduler_->run([&](WorkerContext & wc) {
            llama_context * c = wc.logits_context(static_cast<uint32_t>(tokens.size()));
        const size_t n_batch = llama_n_batch(c);
        size_t pos = 0;
        while (pos < tokens.size()) {
            // The prompt goes in batches of up to n_batch; the rest one token at a time.
            const size_t end = pos < prompt_tokens ? std::min(prompt_tokens, pos + n_batch) : pos + 1;
            if (wc.decode(c, tokens, pos, end, true) != 0) throw Error(ErrorCode::Internal, "llama_decode failed");
            for (size_t i = pos; i < end; ++i) {
                const float * row = llama_get_logits_ith(c, static_cast<int32_t>(i - pos));
                std::copy(row, row + n_vocab, out.begin() + static_cast<std::ptrdiff_t>(i * n_vocab));
            }
            pos = end;
        }
    });
    return out;
}

}  // namespace ohai
