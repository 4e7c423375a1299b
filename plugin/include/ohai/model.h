// ohai — a loaded GGUF model: weights (memory-mapped) and vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct llama_model;
struct llama_vocab;

namespace ohai {

using Token = int32_t;

struct ModelParams {
    std::string path;          // GGUF file
    bool vocab_only = false;   // load only the tokenizer, no weights
    bool use_mmap   = true;
    bool probe      = true;    // first load of a file: one test decode in a child process (isolation.h)
    // Where matrix multiplications run: "auto" (an NNRt accelerator when the system has one, else
    // the CPU), "cpu", "nnrt" (an error without one) or "nnrt:<name>". Everything an accelerator
    // cannot do, and every failure of it, runs on the CPU (devices.h).
    std::string device = "auto";
};

struct ModelInfo {
    std::string path;
    std::string arch;            // general.architecture
    std::string description;     // llama.cpp's one-line description, e.g. "llama ?B Q4_1"
    uint64_t n_params    = 0;
    uint64_t size_bytes  = 0;    // size of the file on disk
    int32_t  n_ctx_train = 0;
    int32_t  n_vocab     = 0;
    int32_t  n_embd      = 0;
    int32_t  n_layer     = 0;
    std::string file_type;       // e.g. "Q4_1"
    std::string chat_template;   // embedded Jinja template, empty when absent
    std::string device;          // what the model computes on: "cpu" or "nnrt:<device name>"
};

class Model {
public:
    // Validates the file, then loads it. Throws Error(ModelLoad) with the reason.
    static std::shared_ptr<Model> load(const ModelParams & params);
    ~Model();
    Model(const Model &) = delete;
    Model & operator=(const Model &) = delete;

    const ModelInfo & info() const { return info_; }
    bool vocab_only() const { return vocab_only_; }

    // Thread-safe. add_special: BOS/EOS as the model asks; parse_special: "<|im_end|>" etc. become control tokens.
    std::vector<Token> tokenize(const std::string & text, bool add_special, bool parse_special) const;
    // Thread-safe. Invalid token ids raise InvalidArgument.
    std::string detokenize(const std::vector<Token> & tokens, bool render_special = false) const;
    std::string token_to_piece(Token token, bool render_special = false) const;
    bool is_end_of_generation(Token token) const;
    void check_tokens(const std::vector<Token> & tokens) const;

    // Borrowed handles for the engine; owned by this Model.
    llama_model * handle() const { return model_.get(); }
    const llama_vocab * vocab() const;

private:
    struct Deleter { void operator()(llama_model * m) const; };
    Model() = default;
    std::unique_ptr<llama_model, Deleter> model_;
    ModelInfo info_;
    bool vocab_only_ = false;
};

}  // namespace ohai
