// ohai — the one place where JSON meets the engine: field names, defaults, validation and error
// codes of every JSON request and reply (the ai_engine plugin's wire protocol, `ohai-cli --json`,
// `ohai run --json`). The wire protocol is documented in docs/aie-protocol.md.
//
// On the nlohmann JSON header that the pinned llama.cpp tree vendors (OpenHarmony carries the
// same library as //third_party/json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ohai/engine.h"
#include "ohai/error.h"
#include "ohai/generation.h"
#include "ohai/model.h"

namespace ohai::wire {

// Keys keep the order they were written in, so replies read the way the documentation shows them.
using Json = nlohmann::ordered_json;

// ai_engine's receiver refuses anything larger, both ways.
constexpr size_t kMaxMessageBytes = 1u << 20;
// Objects/arrays nested deeper than this are refused before parsing (a 1 MiB "[[[[..." would
// otherwise recurse once per bracket).
constexpr int kMaxNestingDepth = 32;

// The error codes of the wire protocol ({"error": {"code": <name>, "message": ...}}).
enum class ErrorKind {
    InvalidJson,       // not UTF-8, not JSON, or not a JSON object
    InvalidRequest,    // a missing, unknown or badly typed field, or a value out of range
    UnknownOp,
    NotPrepared,       // no Prepare for the transaction (or it was released)
    ModelNotFound,
    ModelOutsideDir,   // an absolute path, "..", or a symlink leaving the model directory
    ModelInvalid,      // the file is not a model the engine can load
    ContextOverflow,
    UnknownStream,
    TooManyStreams,
    PayloadTooLarge,   // a request or a reply over kMaxMessageBytes
    Overloaded,        // the engine's queue is full: retry later
    Cancelled,         // the request's transaction was released (or its stream cancelled) meanwhile
    Internal,
};
const char * error_kind_name(ErrorKind kind);

class WireError : public std::runtime_error {
public:
    WireError(ErrorKind kind, const std::string & message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

private:
    ErrorKind kind_;
};

// The wire code of an engine error.
ErrorKind error_kind_for(ErrorCode code);
// {"error": {"code": ..., "message": ...}}; the message is made one valid UTF-8 line of at most
// 1000 bytes, so an echo of bad input can neither break the reply nor make it large.
Json error_body(ErrorKind kind, const std::string & message);

// Parses one request message: at most kMaxMessageBytes, UTF-8, a JSON object.
// Throws WireError(PayloadTooLarge | InvalidJson); messages name the input as `what`.
Json parse_object(const void * data, size_t size, const char * what = "the message");
// Serialises a reply (invalid UTF-8 in strings becomes U+FFFD rather than an exception).
std::string dump(const Json & value);

// Checks that `object` has no fields other than `allowed` (a typo must not be silently ignored).
void check_fields(const Json & object, const std::vector<const char *> & allowed);

// Field readers: absent → `fallback`; wrong type or out of range → WireError(InvalidRequest)
// naming the field.
std::string get_string(const Json & object, const char * field);                    // required
std::string get_string(const Json & object, const char * field, const std::string & fallback);
bool get_bool(const Json & object, const char * field, bool fallback);
int64_t get_int(const Json & object, const char * field, int64_t fallback, int64_t minimum, int64_t maximum);
double get_number(const Json & object, const char * field, double fallback);          // finite
std::vector<Token> get_tokens(const Json & object, const char * field);              // required

// Defaults for generation requests that leave a field out. One definition, here; the Python
// layer reads them through _core (SamplingParams(), GenerateRequest()).
struct GenerateDefaults {
    SamplingParams sampling;
    int32_t max_tokens = GenerateRequest{}.max_tokens;
};

// The fields of a generation request ("prompt" or "messages", sampling options, "stop").
extern const std::vector<const char *> kGenerateFields;

// A GenerateRequest from `object`: "prompt" (text) or "messages" ([{"role", "content"}], formatted
// with the model's chat template), "max_tokens" (>= 0, or -1/null = until the context is full),
// "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed" (null = random), "stop"
// (a string or a list). Does not check unknown fields (the caller knows which others it allows).
GenerateRequest generate_request(const Json & object, const Model & model, const GenerateDefaults & defaults);

// Updates `defaults` from a partial object of the same sampling fields (SetOption).
GenerateDefaults update_defaults(const Json & object, GenerateDefaults defaults);
Json defaults_json(const GenerateDefaults & defaults);

// {"text", "finish_reason", "usage": {"prompt_tokens", "completion_tokens", "cached_prompt_tokens"},
//  "timings": {"prompt_ms", "decode_ms", "prompt_per_second", "decode_per_second"}}
Json usage_json(const Usage & usage);
Json timings_json(const Timings & timings);
Json completion_json(const Completion & completion);

// {"name", "arch", "n_params", "n_ctx", "n_ctx_train", "n_vocab", "file_type", "size_bytes"};
// name is the file name without its directory.
Json model_info_json(const ModelInfo & info, uint32_t n_ctx);

// tokenize {"text", "add_special", "parse_special"} → {"tokens"}
Json tokenize(const Json & object, const Model & model);
// detokenize {"tokens"} → {"text"}
Json detokenize(const Json & object, const Model & model);
// The texts of an embed request {"input": str | [str], "normalize"}; at most kMaxEmbedInputs.
constexpr size_t kMaxEmbedInputs = 256;
std::vector<std::string> embed_inputs(const Json & object);
Json embeddings_json(const std::vector<std::vector<float>> & embeddings);

}  // namespace ohai::wire
