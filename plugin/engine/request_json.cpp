#include "request_json.h"

#include <cmath>
#include <limits>

#include "ohai/chat.h"
#include "sampler.h"
#include "text_stream.h"

namespace ohai::wire {

namespace {

constexpr size_t kMaxErrorMessageBytes = 1000;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
// llama.cpp reads 0xFFFFFFFF as "pick a random seed"; the last reproducible one is one below.
constexpr int64_t kMaxSeed = 0xFFFFFFFELL;

[[noreturn]] void invalid(const std::string & message) { throw WireError(ErrorKind::InvalidRequest, message); }

const char * type_name(const Json & v) {
    switch (v.type()) {
        case Json::value_t::null: return "null";
        case Json::value_t::boolean: return "a boolean";
        case Json::value_t::string: return "a string";
        case Json::value_t::array: return "an array";
        case Json::value_t::object: return "an object";
        case Json::value_t::number_float: return "a floating-point number";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned: return "an integer";
        default: return "a value of another type";
    }
}

// Deepest nesting of objects and arrays, counting brackets outside strings. Stops early.
bool nesting_exceeds(const char * p, size_t n, int limit) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < n; ++i) {
        const char c = p[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) return true;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return false;
}

const Json * find(const Json & object, const char * field) {
    auto it = object.find(field);
    return it == object.end() ? nullptr : &*it;
}

std::string one_line(const std::string & message) {
    std::string line = utf8_sanitize(message);
    for (char & c : line)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (line.size() > kMaxErrorMessageBytes) {
        line.resize(utf8_complete_prefix(line.substr(0, kMaxErrorMessageBytes - 3)));
        line += "...";
    }
    return line;
}

std::vector<std::string> get_stop(const Json & object) {
    const Json * v = find(object, "stop");
    if (!v || v->is_null()) return {};
    if (v->is_string()) return {v->get<std::string>()};
    if (!v->is_array()) invalid(std::string("\"stop\" must be a string or an array of strings, not ") + type_name(*v));
    std::vector<std::string> stop;
    for (const Json & s : *v) {
        if (!s.is_string()) invalid(std::string("\"stop\" must hold strings, not ") + type_name(s));
        stop.push_back(s.get<std::string>());
    }
    return stop;
}

std::vector<ChatMessage> get_messages(const Json & object) {
    const Json & v = object.at("messages");
    if (!v.is_array()) invalid(std::string("\"messages\" must be an array, not ") + type_name(v));
    if (v.empty()) invalid("\"messages\" is empty");
    std::vector<ChatMessage> messages;
    for (const Json & m : v) {
        if (!m.is_object()) invalid(std::string("each message must be an object, not ") + type_name(m));
        check_fields(m, {"role", "content"});
        ChatMessage message{get_string(m, "role"), get_string(m, "content")};
        if (message.role.empty()) invalid("a message has an empty \"role\"");
        messages.push_back(std::move(message));
    }
    return messages;
}

// The sampling fields shared by generate_request and update_defaults.
GenerateDefaults read_sampling(const Json & object, GenerateDefaults d) {
    if (const Json * v = find(object, "max_tokens"); v && v->is_null()) d.max_tokens = -1;
    else d.max_tokens = static_cast<int32_t>(get_int(object, "max_tokens", d.max_tokens, -1, kInt32Max));
    SamplingParams & s = d.sampling;
    s.temperature = static_cast<float>(get_number(object, "temperature", s.temperature));
    s.top_k = static_cast<int32_t>(get_int(object, "top_k", s.top_k, 0, kInt32Max));
    s.top_p = static_cast<float>(get_number(object, "top_p", s.top_p));
    s.min_p = static_cast<float>(get_number(object, "min_p", s.min_p));
    s.repeat_penalty = static_cast<float>(get_number(object, "repeat_penalty", s.repeat_penalty));
    if (const Json * v = find(object, "seed")) {
        if (v->is_null()) s.seed.reset();
        else s.seed = static_cast<uint32_t>(get_int(object, "seed", 0, 0, kMaxSeed));
    }
    try {
        check_sampling(s);
    } catch (const Error & e) {
        invalid(e.what());
    }
    return d;
}

}  // namespace

const char * error_kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::InvalidJson:     return "invalid_json";
        case ErrorKind::InvalidRequest:  return "invalid_request";
        case ErrorKind::UnknownOp:       return "unknown_op";
        case ErrorKind::NotPrepared:     return "not_prepared";
        case ErrorKind::ModelNotFound:   return "model_not_found";
        case ErrorKind::ModelOutsideDir: return "model_outside_dir";
        case ErrorKind::ModelInvalid:    return "model_invalid";
        case ErrorKind::ContextOverflow: return "context_overflow";
        case ErrorKind::UnknownStream:   return "unknown_stream";
        case ErrorKind::TooManyStreams:  return "too_many_streams";
        case ErrorKind::PayloadTooLarge: return "payload_too_large";
        case ErrorKind::Overloaded:      return "overloaded";
        case ErrorKind::Cancelled:       return "cancelled";
        case ErrorKind::Internal:        return "internal";
    }
    return "internal";
}

ErrorKind error_kind_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument: return ErrorKind::InvalidRequest;
        case ErrorCode::ModelLoad:       return ErrorKind::ModelInvalid;
        case ErrorCode::ContextOverflow: return ErrorKind::ContextOverflow;
        case ErrorCode::Overloaded:      return ErrorKind::Overloaded;
        case ErrorCode::Cancelled:       return ErrorKind::Cancelled;
        case ErrorCode::InvalidState:    // a closed engine
        case ErrorCode::Unsupported:
        case ErrorCode::Internal:        return ErrorKind::Internal;
    }
    return ErrorKind::Internal;
}

Json error_body(ErrorKind kind, const std::string & message) {
    Json error;
    error["code"] = error_kind_name(kind);
    error["message"] = one_line(message);
    Json body;
    body["error"] = std::move(error);
    return body;
}

Json parse_object(const void * data, size_t size, const char * what) {
    const std::string subject = what;
    if (size > kMaxMessageBytes)
        throw WireError(ErrorKind::PayloadTooLarge, subject + " is " + std::to_string(size) +
                                                    " bytes; the limit is " + std::to_string(kMaxMessageBytes));
    if (size == 0 || data == nullptr) throw WireError(ErrorKind::InvalidJson, subject + " is empty");
    const char * p = static_cast<const char *>(data);
    const std::string text(p, size);
    if (utf8_sanitize(text) != text) throw WireError(ErrorKind::InvalidJson, subject + " is not valid UTF-8");
    // The parser would stop at a raw NUL and ignore the rest; no JSON text contains one.
    if (text.find('\0') != std::string::npos) throw WireError(ErrorKind::InvalidJson, subject + " contains a NUL byte");
    if (nesting_exceeds(p, size, kMaxNestingDepth))
        throw WireError(ErrorKind::InvalidJson,
                        subject + " nests objects/arrays deeper than " + std::to_string(kMaxNestingDepth) + " levels");
    Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) throw WireError(ErrorKind::InvalidJson, subject + " is not valid JSON");
    if (!value.is_object())
        throw WireError(ErrorKind::InvalidJson, subject + " must be a JSON object, not " + type_name(value));
    return value;
}

std::string dump(const Json & value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

void check_fields(const Json & object, const std::vector<const char *> & allowed) {
    for (auto it = object.begin(); it != object.end(); ++it) {
        bool known = false;
        for (const char * name : allowed) known = known || it.key() == name;
        if (!known) invalid("unknown field \"" + one_line(it.key().substr(0, 64)) + "\"");
    }
}

std::string get_string(const Json & object, const char * field) {
    const Json * v = find(object, field);
    if (!v) invalid(std::string("missing field \"") + field + "\"");
    if (!v->is_string()) invalid(std::string("\"") + field + "\" must be a string, not " + type_name(*v));
    return v->get<std::string>();
}

std::string get_string(const Json & object, const char * field, const std::string & fallback) {
    return find(object, field) ? get_string(object, field) : fallback;
}

bool get_bool(const Json & object, const char * field, bool fallback) {
    const Json * v = find(object, field);
    if (!v) return fallback;
    if (!v->is_boolean()) invalid(std::string("\"") + field + "\" must be true or false, not " + type_name(*v));
    return v->get<bool>();
}

int64_t get_int(const Json & object, const char * field, int64_t fallback, int64_t minimum, int64_t maximum) {
    const Json * v = find(object, field);
    if (!v) return fallback;
    const std::string name = std::string("\"") + field + "\"";
    if (v->is_number_unsigned()) {
        if (v->get<uint64_t>() > static_cast<uint64_t>(maximum)) invalid(name + " must be <= " + std::to_string(maximum));
        const int64_t n = static_cast<int64_t>(v->get<uint64_t>());
        if (n < minimum) invalid(name + " must be >= " + std::to_string(minimum));
        return n;
    }
    if (!v->is_number_integer()) invalid(name + " must be an integer, not " + type_name(*v));
    const int64_t n = v->get<int64_t>();
    if (n < minimum) invalid(name + " must be >= " + std::to_string(minimum));
    if (n > maximum) invalid(name + " must be <= " + std::to_string(maximum));
    return n;
}

double get_number(const Json & object, const char * field, double fallback) {
    const Json * v = find(object, field);
    if (!v) return fallback;
    if (!v->is_number()) invalid(std::string("\"") + field + "\" must be a number, not " + type_name(*v));
    const double x = v->get<double>();
    if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max())
        invalid(std::string("\"") + field + "\" is out of range");
    return x;
}

std::vector<Token> get_tokens(const Json & object, const char * field) {
    const Json * v = find(object, field);
    if (!v) invalid(std::string("missing field \"") + field + "\"");
    if (!v->is_array()) invalid(std::string("\"") + field + "\" must be an array of token ids, not " + type_name(*v));
    std::vector<Token> tokens;
    tokens.reserve(v->size());
    for (const Json & t : *v) {
        if (t.is_number_unsigned() && t.get<uint64_t>() <= static_cast<uint64_t>(kInt32Max)) {
            tokens.push_back(static_cast<Token>(t.get<uint64_t>()));
        } else if (t.is_number_integer() && !t.is_number_unsigned()) {
            // Negative ids are never valid; the model's check names them.
            const int64_t n = t.get<int64_t>();
            tokens.push_back(n < -kInt32Max ? -kInt32Max : static_cast<Token>(n));
        } else {
            invalid(std::string("\"") + field + "\" must hold integer token ids, not " + type_name(t));
        }
    }
    return tokens;
}

const std::vector<const char *> kGenerateFields = {
    "prompt", "messages", "max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "stop",
};

GenerateRequest generate_request(const Json & object, const Model & model, const GenerateDefaults & defaults) {
    const bool has_prompt = find(object, "prompt") != nullptr;
    const bool has_messages = find(object, "messages") != nullptr;
    if (has_prompt == has_messages) invalid("give either \"prompt\" (text) or \"messages\" (chat), not both or neither");
    const GenerateDefaults d = read_sampling(object, defaults);
    GenerateRequest request;
    request.max_tokens = d.max_tokens;
    request.sampling = d.sampling;
    request.stop = get_stop(object);
    try {
        if (has_prompt) {
            request.prompt = get_string(object, "prompt");
            if (request.prompt.empty()) invalid("\"prompt\" is empty");
        } else {
            // Tokenized like a text prompt (BOS as the model asks), the same as Model.chat().
            request.prompt = apply_chat_template(model, get_messages(object));
        }
    } catch (const Error & e) {
        throw WireError(error_kind_for(e.code()), e.what());
    }
    return request;
}

GenerateDefaults update_defaults(const Json & object, GenerateDefaults defaults) {
    check_fields(object, {"max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed"});
    return read_sampling(object, defaults);
}

Json defaults_json(const GenerateDefaults & d) {
    // The engine keeps float32: 0.95f would print as 0.949999988079071. Six decimals is what a
    // float holds.
    auto shown = [](float x) { return std::round(static_cast<double>(x) * 1e6) / 1e6; };
    Json j;
    j["max_tokens"] = d.max_tokens;
    j["temperature"] = shown(d.sampling.temperature);
    j["top_k"] = d.sampling.top_k;
    j["top_p"] = shown(d.sampling.top_p);
    j["min_p"] = shown(d.sampling.min_p);
    j["repeat_penalty"] = shown(d.sampling.repeat_penalty);
    j["seed"] = d.sampling.seed ? Json(*d.sampling.seed) : Json(nullptr);
    return j;
}

Json usage_json(const Usage & usage) {
    Json j;
    j["prompt_tokens"] = usage.prompt_tokens;
    j["completion_tokens"] = usage.completion_tokens;
    j["cached_prompt_tokens"] = usage.cached_prompt_tokens;
    return j;
}

Json timings_json(const Timings & t) {
    Json j;
    j["prompt_ms"] = t.prompt_ms;
    j["decode_ms"] = t.decode_ms;
    j["prompt_per_second"] = t.prompt_per_second;
    j["decode_per_second"] = t.decode_per_second;
    return j;
}

Json completion_json(const Completion & c) {
    Json j;
    j["text"] = c.text;
    j["finish_reason"] = finish_reason_name(c.finish_reason);
    j["usage"] = usage_json(c.usage);
    j["timings"] = timings_json(c.timings);
    return j;
}

Json model_info_json(const ModelInfo & info, uint32_t n_ctx) {
    const size_t slash = info.path.find_last_of('/');
    Json j;
    j["name"] = slash == std::string::npos ? info.path : info.path.substr(slash + 1);
    j["arch"] = info.arch;
    j["n_params"] = info.n_params;
    j["n_ctx"] = n_ctx;
    j["n_ctx_train"] = info.n_ctx_train;
    j["n_vocab"] = info.n_vocab;
    j["file_type"] = info.file_type;
    j["size_bytes"] = info.size_bytes;
    j["device"] = info.device;
    return j;
}

Json tokenize(const Json & object, const Model & model) {
    const std::string text = get_string(object, "text");
    const bool add_special = get_bool(object, "add_special", true);
    const bool parse_special = get_bool(object, "parse_special", false);
    Json j;
    j["tokens"] = model.tokenize(text, add_special, parse_special);
    return j;
}

Json detokenize(const Json & object, const Model & model) {
    const std::vector<Token> tokens = get_tokens(object, "tokens");
    try {
        Json j;
        j["text"] = model.detokenize(tokens);
        return j;
    } catch (const Error & e) {
        throw WireError(error_kind_for(e.code()), e.what());
    }
}

std::vector<std::string> embed_inputs(const Json & object) {
    const Json * v = find(object, "input");
    if (!v) invalid("missing field \"input\"");
    std::vector<std::string> texts;
    if (v->is_string()) {
        texts.push_back(v->get<std::string>());
    } else if (v->is_array()) {
        if (v->empty()) invalid("\"input\" is an empty array");
        if (v->size() > kMaxEmbedInputs) invalid("\"input\" holds more than " + std::to_string(kMaxEmbedInputs) + " texts");
        for (const Json & t : *v) {
            if (!t.is_string()) invalid(std::string("\"input\" must hold strings, not ") + type_name(t));
            texts.push_back(t.get<std::string>());
        }
    } else {
        invalid(std::string("\"input\" must be a string or an array of strings, not ") + type_name(*v));
    }
    for (const auto & t : texts)
        if (t.empty()) invalid("cannot embed an empty text");
    return texts;
}

Json embeddings_json(const std::vector<std::vector<float>> & embeddings) {
    Json j;
    j["embeddings"] = embeddings;
    return j;
}

}  // namespace ohai::wire
