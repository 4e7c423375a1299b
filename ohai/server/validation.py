"""Request bodies: read (with a size limit), parsed as strict JSON, and checked field by field.

Each endpoint's body becomes a typed request (`CompletionRequest`, `ChatRequest`, `EmbeddingRequest`)
or an `APIError` naming the offending field (``param``). Fields follow OpenAI's API; ``null`` means
"not given", as there. A field OpenAI accepts but this engine cannot honour (logprobs, tools, penalties
other than 0, n > 1, ...) is refused with a 400 rather than silently ignored; a field OpenAI does not
know is refused too ("Unrecognized request argument"), except llama.cpp's sampling extras
``top_k``, ``min_p`` and ``repeat_penalty``. Omitted sampling options take ohai's defaults (those of
`ohai.Model.generate`), not OpenAI's.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from starlette.requests import Request

from ..defaults import SAMPLING
from .errors import APIError, invalid

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB

# llama.cpp reads seed 0xFFFFFFFF as "random", so the last reproducible seed is one below.
_MAX_SEED = 2**32 - 2
_MAX_INT = 2**31 - 1
MAX_STOP_STRINGS = 16
MAX_EMBEDDING_INPUTS = 2048
# Completions default to OpenAI's 16 tokens; chat runs until the model stops or the context is full.
DEFAULT_COMPLETION_MAX_TOKENS = 16

Prompt = Union[str, list[int]]


# -- the body ----------------------------------------------------------------------------------
async def read_json(request: Request, limit: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    """The request body as a JSON object: 413 beyond `limit` bytes (announced or streamed), 400 if it
    is not UTF-8, not JSON (NaN and Infinity included), nested too deeply or not an object."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise invalid("the Content-Length header is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return parse_json(b"".join(chunks))


def _too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than {limit} bytes", code="request_too_large")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise invalid("the request body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(f"the request body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise invalid(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise invalid("the request body is nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with more digits than Python converts
        raise invalid(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid(f"the request body must be a JSON object, not {_json_type(data)}")
    return data


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- typed requests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampling:
    max_tokens: int | None
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repeat_penalty: float
    seed: int | None
    stop: list[str] = field(default_factory=list)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `ohai.Model.generate` / `stream` / `chat`."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "min_p": self.min_p, "repeat_penalty": self.repeat_penalty,
                "seed": self.seed, "stop": list(self.stop)}


@dataclass(frozen=True)
class CompletionRequest:
    model: str | None
    prompt: Prompt
    sampling: Sampling
    stream: bool
    include_usage: bool
    echo: bool


@dataclass(frozen=True)
class ChatRequest:
    model: str | None
    messages: list[dict[str, str]]
    sampling: Sampling
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str | None
    texts: list[str]
    encoding_format: str


# -- field access ------------------------------------------------------------------------------
class _Fields:
    """A body's fields, remembering which ones were looked at: the rest are unknown."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._seen: set[str] = set()

    def __call__(self, name: str) -> Any:
        self._seen.add(name)
        return self._data.get(name)

    def given(self, name: str) -> bool:
        self._seen.add(name)
        return self._data.get(name) is not None

    def refuse_unknown(self) -> None:
        unknown = [k for k in self._data if k not in self._seen]
        if unknown:
            raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0],
                          code="unknown_parameter")


def _text(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"'{param}' must be a string, not {_json_type(value)}", param)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
        raise invalid(f"'{param}' is not valid Unicode: it holds a lone surrogate at index {exc.start}", param) from None
    return value


def _bool(value: object, param: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"'{param}' must be a boolean, not {_json_type(value)}", param)
    return value


def _int(value: object, param: str, *, minimum: int, maximum: int = _MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{param}' must be an integer, not {_json_type(value)}", param)
    if value < minimum:
        raise invalid(f"'{param}' must be >= {minimum}", param)
    if value > maximum:
        raise invalid(f"'{param}' must be <= {maximum}", param)
    return value


def _number(value: object, param: str, *, minimum: float, maximum: float = math.inf,
            exclusive_minimum: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"'{param}' must be a number, not {_json_type(value)}", param)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise invalid(f"'{param}' must be a finite number", param)
    if number < minimum or (exclusive_minimum and number == minimum):
        raise invalid(f"'{param}' must be {'>' if exclusive_minimum else '>='} {minimum:g}", param)
    if number > maximum:
        raise invalid(f"'{param}' must be <= {maximum:g}", param)
    return number


def _only(fields: _Fields, name: str, accepted: Callable[[Any], bool], why: str) -> None:
    """A field OpenAI knows but the engine cannot honour: accepted only at its neutral value."""
    value = fields(name)
    if value is not None and not accepted(value):
        raise invalid(f"'{name}' is not supported by this server: {why}", name, code="unsupported_parameter")


def _ignored(fields: _Fields, *names: str) -> None:
    """Fields that change nothing here (user ids, metadata, storage and tier preferences)."""
    for name in names:
        fields(name)


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [_text(value, "stop")]
    if not isinstance(value, list):
        raise invalid(f"'stop' must be a string or an array of strings, not {_json_type(value)}", "stop")
    if len(value) > MAX_STOP_STRINGS:
        raise invalid(f"'stop' holds {len(value)} strings; at most {MAX_STOP_STRINGS} are allowed", "stop")
    return [_text(s, f"stop[{i}]") for i, s in enumerate(value)]


def _sampling(fields: _Fields, *, default_max_tokens: int | None, chat: bool) -> Sampling:
    max_tokens = default_max_tokens
    names = ("max_completion_tokens", "max_tokens") if chat else ("max_tokens",)
    for name in names:  # chat: max_completion_tokens (OpenAI's current name) wins over max_tokens
        value = fields(name)
        if value is not None:
            max_tokens = _int(value, name, minimum=0)
            break
    if chat:
        fields("max_tokens")
    d = SAMPLING
    temperature = d.temperature if not fields.given("temperature") else _number(fields("temperature"), "temperature",
                                                                         minimum=0, maximum=2)
    top_p = d.top_p
    if fields.given("top_p"):
        top_p = _number(fields("top_p"), "top_p", minimum=0, maximum=1)
        # OpenAI allows 0; the sampler keeps at least one token, so "the smallest nucleus" is the top token.
        top_p = max(top_p, 1e-9)
    top_k = d.top_k if not fields.given("top_k") else _int(fields("top_k"), "top_k", minimum=0)
    min_p = d.min_p if not fields.given("min_p") else _number(fields("min_p"), "min_p", minimum=0, maximum=1)
    repeat_penalty = d.repeat_penalty
    if fields.given("repeat_penalty"):
        repeat_penalty = _number(fields("repeat_penalty"), "repeat_penalty", minimum=0, exclusive_minimum=True)
    seed: int | None = None
    if fields.given("seed"):
        raw_seed = fields("seed")
        if type(raw_seed) is int and raw_seed == -1:  # llama.cpp's "random seed"
            seed = None
        else:
            seed = _int(raw_seed, "seed", minimum=0, maximum=_MAX_SEED)
    stop = _stop(fields("stop"))
    for name in ("frequency_penalty", "presence_penalty"):
        value = fields(name)
        if value is not None:
            _number(value, name, minimum=-2, maximum=2)
            if value != 0:
                raise invalid(f"'{name}' is not supported by this server (only 0); use 'repeat_penalty'", name,
                              code="unsupported_parameter")
    n = fields("n")
    if n is not None and _int(n, "n", minimum=1) != 1:
        raise invalid("'n' must be 1: this server returns one choice per request", "n", code="unsupported_parameter")
    _only(fields, "logit_bias", lambda v: isinstance(v, dict) and not v, "logit biases are not implemented")
    return Sampling(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                    repeat_penalty=repeat_penalty, seed=seed, stop=stop)


def _stream_flags(fields: _Fields) -> tuple[bool, bool]:
    stream = _bool(fields("stream"), "stream")
    options = fields("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise invalid("'stream_options' is only allowed when 'stream' is true", "stream_options")
    if not isinstance(options, dict):
        raise invalid(f"'stream_options' must be an object, not {_json_type(options)}", "stream_options")
    unknown = [k for k in options if k not in ("include_usage", "include_obfuscation")]
    if unknown:
        raise invalid(f"Unrecognized stream option: {unknown[0]}", f"stream_options.{unknown[0]}",
                      code="unknown_parameter")
    _bool(options.get("include_obfuscation"), "stream_options.include_obfuscation")
    return stream, _bool(options.get("include_usage"), "stream_options.include_usage")


def _model(fields: _Fields) -> str | None:
    value = fields("model")
    return None if value is None else _text(value, "model")


# -- /v1/completions ---------------------------------------------------------------------------
def _prompt(value: object) -> Prompt:
    if value is None:
        raise invalid("'prompt' is required", "prompt")
    if isinstance(value, str):
        return _text(value, "prompt")
    if not isinstance(value, list) or not value:
        raise invalid("'prompt' must be a string, an array of token ids, or an array holding one of those", "prompt")
    if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return [_int(t, f"prompt[{i}]", minimum=0) for i, t in enumerate(value)]
    if len(value) != 1:
        raise invalid(f"'prompt' holds {len(value)} prompts: this server takes one prompt per request", "prompt",
                      code="unsupported_parameter")
    inner = value[0]
    if isinstance(inner, str):
        return _text(inner, "prompt[0]")
    if isinstance(inner, list) and inner and all(isinstance(t, int) and not isinstance(t, bool) for t in inner):
        return [_int(t, f"prompt[0][{i}]", minimum=0) for i, t in enumerate(inner)]
    raise invalid("'prompt' must be a string, an array of token ids, or an array holding one of those", "prompt")


def parse_completion(data: Mapping[str, Any]) -> CompletionRequest:
    fields = _Fields(data)
    model = _model(fields)
    prompt = _prompt(fields("prompt"))
    sampling = _sampling(fields, default_max_tokens=DEFAULT_COMPLETION_MAX_TOKENS, chat=False)
    stream, include_usage = _stream_flags(fields)
    echo = _bool(fields("echo"), "echo")
    _only(fields, "best_of", lambda v: v == 1 and not isinstance(v, bool), "only best_of=1")
    _only(fields, "logprobs", lambda v: False, "log probabilities are not implemented")
    _only(fields, "suffix", lambda v: v == "", "insertion (suffix) is not implemented")
    _ignored(fields, "user")
    fields.refuse_unknown()
    return CompletionRequest(model=model, prompt=prompt, sampling=sampling, stream=stream,
                             include_usage=include_usage, echo=echo)


# -- /v1/chat/completions ----------------------------------------------------------------------
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _content(value: object, param: str, role: str) -> str:
    if isinstance(value, str):
        return _text(value, param)
    if value is None and role == "assistant":
        return ""
    if not isinstance(value, list):
        raise invalid(f"'{param}' must be a string or an array of text parts, not {_json_type(value)}", param)
    texts = []
    for i, part in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise invalid(f"'{where}' must be an object, not {_json_type(part)}", where)
        kind = part.get("type")
        if kind != "text":
            raise invalid(f"'{where}' is a {kind!r} part: this server takes text only", where,
                          code="unsupported_parameter")
        texts.append(_text(part.get("text"), f"{where}.text"))
    return "\n".join(texts)


def _messages(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise invalid("'messages' must be a non-empty array of {role, content} objects", "messages")
    out = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(f"'{where}' must be an object, not {_json_type(message)}", where)
        role = message.get("role")
        if not isinstance(role, str):
            raise invalid(f"'{where}.role' must be a string", f"{where}.role")
        if role in ("tool", "function"):
            raise invalid(f"'{where}' is a {role} message: tool calling is not supported", f"{where}.role",
                          code="unsupported_parameter")
        if role not in _ROLES:
            raise invalid(f"'{where}.role' must be one of system, developer, user, assistant, not {role!r}",
                          f"{where}.role")
        for key in ("tool_calls", "function_call"):
            if message.get(key):
                raise invalid(f"'{where}.{key}': tool calling is not supported", f"{where}.{key}",
                              code="unsupported_parameter")
        if "content" not in message:
            raise invalid(f"'{where}.content' is required", f"{where}.content")
        out.append({"role": _ROLES[role], "content": _content(message["content"], f"{where}.content", role)})
    return out


def parse_chat(data: Mapping[str, Any]) -> ChatRequest:
    fields = _Fields(data)
    model = _model(fields)
    messages = _messages(fields("messages"))
    sampling = _sampling(fields, default_max_tokens=None, chat=True)
    stream, include_usage = _stream_flags(fields)
    _only(fields, "logprobs", lambda v: v is False, "log probabilities are not implemented")
    _only(fields, "top_logprobs", lambda v: v == 0 and not isinstance(v, bool), "log probabilities are not implemented")
    _only(fields, "tools", lambda v: v == [], "tool calling is not implemented")
    _only(fields, "functions", lambda v: v == [], "function calling is not implemented")
    _only(fields, "tool_choice", lambda v: v in ("none", "auto"), "tool calling is not implemented")
    _only(fields, "function_call", lambda v: v in ("none", "auto"), "function calling is not implemented")
    _only(fields, "response_format", lambda v: isinstance(v, dict) and v.get("type") == "text" and len(v) == 1,
          "only {\"type\": \"text\"}: structured output is not implemented")
    _only(fields, "modalities", lambda v: v == ["text"], "only text output")
    for name, why in (("audio", "audio output"), ("prediction", "predicted outputs"),
                      ("reasoning_effort", "this model does not reason"), ("web_search_options", "web search"),
                      ("verbosity", "verbosity control")):
        _only(fields, name, lambda v: False, f"{why} is not available")
    _ignored(fields, "user", "metadata", "store", "service_tier", "parallel_tool_calls", "prompt_cache_key",
             "safety_identifier")
    fields.refuse_unknown()
    return ChatRequest(model=model, messages=messages, sampling=sampling, stream=stream, include_usage=include_usage)


# -- /v1/embeddings ----------------------------------------------------------------------------
def parse_embedding(data: Mapping[str, Any], *, n_embd: int) -> EmbeddingRequest:
    fields = _Fields(data)
    model = _model(fields)
    value = fields("input")
    if value is None:
        raise invalid("'input' is required", "input")
    texts: list[str]
    if isinstance(value, str):
        texts = [_text(value, "input")]
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if len(value) > MAX_EMBEDDING_INPUTS:
            raise invalid(f"'input' holds {len(value)} texts; at most {MAX_EMBEDDING_INPUTS} are allowed", "input")
        texts = [_text(v, f"input[{i}]") for i, v in enumerate(value)]
    elif isinstance(value, list) and value and all(isinstance(v, (int, list)) and not isinstance(v, bool) for v in value):
        raise invalid("'input' as token ids is not supported: send text", "input", code="unsupported_parameter")
    else:
        raise invalid("'input' must be a string or a non-empty array of strings", "input")
    for i, text in enumerate(texts):
        if not text:
            raise invalid(f"'input[{i}]' is empty" if len(texts) > 1 or not isinstance(value, str)
                          else "'input' is empty", "input")
    encoding_format = fields("encoding_format")
    if encoding_format is None:
        encoding_format = "float"
    elif encoding_format not in ("float", "base64"):
        raise invalid("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    dimensions = fields("dimensions")
    if dimensions is not None and _int(dimensions, "dimensions", minimum=1) != n_embd:
        raise invalid(f"'dimensions' must be {n_embd}, this model's embedding size", "dimensions",
                      code="unsupported_parameter")
    _ignored(fields, "user")
    fields.refuse_unknown()
    return EmbeddingRequest(model=model, texts=texts, encoding_format=str(encoding_format))
