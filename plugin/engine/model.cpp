#include "ohai/model.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "backend.h"
#include "gguf_check.h"
#include "ohai/isolation.h"
#include "llama.h"
#include "ohai/error.h"
#include "ohai/log.h"
#include "text_stream.h"

namespace ohai {
namespace {

std::string meta_string(const llama_model * model, const char * key) {
    char buf[256];
    const int32_t n = llama_model_meta_val_str(model, key, buf, sizeof buf);
    if (n < 0) return {};
    if (static_cast<size_t>(n) < sizeof buf) return std::string(buf, n);
    std::string big(n + 1, '\0');
    llama_model_meta_val_str(model, key, big.data(), big.size());
    big.resize(n);
    return big;
}

// The file's declared type (general.file_type): known even for a vocab-only load, where
// llama.cpp does not read the tensors. Names come back as e.g. "MOSTLY_Q4_1"; keep "Q4_1".
std::string file_type_name(const llama_model * model) {
    llama_ftype ftype = llama_model_ftype(model);
    const std::string declared = meta_string(model, "general.file_type");
    if (!declared.empty()) {
        char * end = nullptr;
        const long v = std::strtol(declared.c_str(), &end, 10);
        if (end && *end == '\0' && v >= 0 && v < 1024) ftype = static_cast<llama_ftype>(v);
    }
    std::string name = llama_ftype_name(ftype);
    if (name.rfind("MOSTLY_", 0) == 0) name = name.substr(7);
    return name;
}

}  // namespace

void Model::Deleter::operator()(llama_model * m) const { llama_model_free(m); }

std::shared_ptr<Model> Model::load(const ModelParams & params) {
    init_backend();
    // C APIs would open the file named by the part before a NUL: never a different file than asked for.
    if (params.path.find('\0') != std::string::npos) throw Error(ErrorCode::InvalidArgument, "the model path contains a NUL byte");
    check_gguf_file(params.path);
    // Up-front checks catch the known ways a file makes llama.cpp abort; the probe catches the
    // rest in a child process. A tokenizer-only load runs no kernels and needs no probe.
    if (params.probe && !params.vocab_only) probe_model_file(params.path);

    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = params.vocab_only;
    // The accelerator reads the weights from the CPU's buffers: no layer is moved to it (the
    // scheduler sends it the operations it supports).
    const std::vector<ggml_backend_dev_t> devices = select_devices(params.vocab_only ? "cpu" : params.device);
    mp.devices = const_cast<ggml_backend_dev_t *>(devices.data());
    mp.n_gpu_layers = 0;
    mp.load_mode = params.use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;

    take_last_native_error();
    llama_model * raw = llama_model_load_from_file(params.path.c_str(), mp);
    if (raw == nullptr) {
        std::string why = take_last_native_error();
        throw Error(ErrorCode::ModelLoad, "failed to load model '" + params.path + "'" + (why.empty() ? "" : ": " + why));
    }

    std::shared_ptr<Model> model(new Model());
    model->model_.reset(raw);
    model->vocab_only_ = params.vocab_only;

    ModelInfo & info = model->info_;
    struct stat st {};
    ::stat(params.path.c_str(), &st);
    info.path = params.path;
    info.device = devices.size() > 1 ? std::string("nnrt:") + ggml_backend_dev_name(devices[0]) : std::string("cpu");
    // Metadata strings come from the file: whatever bytes it holds, callers get valid UTF-8.
    info.arch = utf8_sanitize(meta_string(raw, "general.architecture"));
    char desc[256];
    llama_model_desc(raw, desc, sizeof desc);
    info.description = utf8_sanitize(desc);
    info.n_params = params.vocab_only ? 0 : llama_model_n_params(raw);
    info.size_bytes = static_cast<uint64_t>(st.st_size);
    info.n_ctx_train = llama_model_n_ctx_train(raw);
    info.n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(raw));
    info.n_embd = llama_model_n_embd(raw);
    info.n_layer = llama_model_n_layer(raw);
    info.file_type = utf8_sanitize(file_type_name(raw));
    const char * tmpl = llama_model_chat_template(raw, nullptr);
    info.chat_template = utf8_sanitize(tmpl ? tmpl : "");
    if (info.n_vocab <= 0) throw Error(ErrorCode::ModelLoad, "model '" + params.path + "' has no vocabulary");
    return model;
}

Model::~Model() = default;

const llama_vocab * Model::vocab() const { return llama_model_get_vocab(model_.get()); }

std::vector<Token> Model::tokenize(const std::string & text, bool add_special, bool parse_special) const {
    if (text.size() > static_cast<size_t>(INT32_MAX) / 2) throw Error(ErrorCode::InvalidArgument, "text too long to tokenize");
    const int32_t len = static_cast<int32_t>(text.size());
    std::vector<Token> tokens(text.size() + 2);
    int32_t n = llama_tokenize(vocab(), text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()),
                               add_special, parse_special);
    if (n == INT32_MIN) throw Error(ErrorCode::InvalidArgument, "text too long to tokenize");
    if (n < 0) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab(), text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()),
                           add_special, parse_special);
        if (n < 0) throw Error(ErrorCode::Internal, "tokenization failed");
    }
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

void Model::check_tokens(const std::vector<Token> & tokens) const {
    for (Token t : tokens) {
        if (t < 0 || t >= info_.n_vocab)
            throw Error(ErrorCode::InvalidArgument, "token id " + std::to_string(t) + " is out of range [0, " +
                                                    std::to_string(info_.n_vocab) + ")");
    }
}

std::string Model::detokenize(const std::vector<Token> & tokens, bool render_special) const {
    check_tokens(tokens);
    if (tokens.empty()) return {};
    std::string text(tokens.size() * 8 + 16, '\0');
    int32_t n = llama_detokenize(vocab(), tokens.data(), static_cast<int32_t>(tokens.size()), text.data(),
                                 static_cast<int32_t>(text.size()), false, render_special);
    if (n < 0) {
        text.resize(static_cast<size_t>(-n));
        n = llama_detokenize(vocab(), tokens.data(), static_cast<int32_t>(tokens.size()), text.data(),
                             static_cast<int32_t>(text.size()), false, render_special);
        if (n < 0) throw Error(ErrorCode::Internal, "detokenization failed");
    }
    text.resize(static_cast<size_t>(n));
    return text;
}

std::string Model::token_to_piece(Token token, bool render_special) const {
    check_tokens({token});
    char buf[128];
    int32_t n = llama_token_to_piece(vocab(), token, buf, sizeof buf, 0, render_special);
    if (n >= 0) return std::string(buf, n);
    std::string big(static_cast<size_t>(-n), '\0');
    n = llama_token_to_piece(vocab(), token, big.data(), static_cast<int32_t>(big.size()), 0, render_special);
    if (n < 0) throw Error(ErrorCode::Internal, "token to text failed");
    big.resize(static_cast<size_t>(n));
    return big;
}

bool Model::is_end_of_generation(Token token) const { return llama_vocab_is_eog(vocab(), token); }

}  // namespace ohai
