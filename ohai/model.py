"""`ohai.Model`: a loaded GGUF model and the engine that serves it."""
from __future__ import annotations

import array
import atexit
import math
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, Union, overload

import numpy as np

from . import _core, defaults, openai_format
from .devices import check_device, nnrt_stats
from ._core import InvalidRequestError, OhaiError
from .default_model import default_model_path
from .types import Completion, ModelInfo, Timings, Usage

# Token ids: any sequence of integers, or a 1-D NumPy integer array.
Tokens = Union[Sequence[int], np.ndarray]
Prompt = Union[str, Tokens]
Message = Mapping[str, str]

# llama.cpp reads seed 0xFFFFFFFF as "pick a random one", so the last reproducible seed is one below.
_SEED_LIMIT = 2**32 - 1
# Request defaults live once, in the engine (C++); the signatures below show them.
_DEFAULT_SAMPLING = defaults.SAMPLING
_DEFAULT_MAX_TOKENS: int | None = defaults.SAMPLING.max_tokens
MAX_CONTEXT = 2**20
MAX_THREADS = 512  # ggml's limit
MAX_PARALLEL = 64
KV_TYPES = ("f16", "q8_0", "q4_0")


class Model:
    """A GGUF model loaded (memory-mapped) into ohai's native engine.

    ``Model()`` loads the default model; ``Model("x.gguf", n_ctx=4096, threads=2)`` any other.
    With ``vocab_only=True`` only the tokenizer is loaded; ``use_mmap=False`` reads the weights into
    memory instead of mapping the file (see DEVELOPERS.md, "Lifetime and memory mapping").

    Many threads may call `generate`/`stream` at once: up to ``parallel`` requests (default 4) are
    decoded together in every step (continuous batching), sharing one KV cache of ``n_ctx`` tokens
    (``kv_type`` "f16", "q8_0" or "q4_0"); prompts that share a prefix with an earlier request reuse
    its cache. Up to ``max_queued`` more wait; beyond that a request raises `OverloadedError`.
    """

    def __init__(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None = None,
        *,
        n_ctx: int = 0,
        threads: int = 0,
        vocab_only: bool = False,
        use_mmap: bool = True,
        parallel: int = 0,
        kv_type: str = "f16",
        max_queued: int = 64,
        device: str = "auto",
    ) -> None:
        self._engine: _core.Engine | None = None
        self._model: _core.Model | None = None
        self._engine_lock = threading.Lock()
        self._n_ctx = _check_int("n_ctx", n_ctx, minimum=0, maximum=MAX_CONTEXT)
        self._threads = _check_int("threads", threads, minimum=0, maximum=MAX_THREADS)
        self._parallel = _check_int("parallel", parallel, minimum=0, maximum=MAX_PARALLEL)
        self._max_queued = _check_int("max_queued", max_queued, minimum=0, maximum=1_000_000)
        if not isinstance(kv_type, str) or kv_type.lower() not in KV_TYPES:
            raise InvalidRequestError(f"kv_type must be one of {', '.join(KV_TYPES)}")
        self._kv_type = kv_type.lower()
        vocab_only = _flag("vocab_only", vocab_only)
        device = check_device(device)
        # Checked last: the default model may have to be downloaded first.
        raw_path, shown_path = _model_path(path)
        self._model = _core.Model(raw_path, vocab_only=vocab_only, use_mmap=_flag("use_mmap", use_mmap), device=device)
        raw = self._model.info
        self._info = ModelInfo(
            # The caller's own str, not the engine's copy: a file name that is not UTF-8 would not
            # survive the trip through std::string and back.
            path=shown_path, arch=raw.arch, n_params=raw.n_params, size_bytes=raw.size_bytes,
            n_ctx_train=raw.n_ctx_train, n_vocab=raw.n_vocab, file_type=raw.file_type,
            chat_template=raw.chat_template, description=raw.description, n_embd=raw.n_embd,
            n_layer=raw.n_layer, device=raw.device,
        )
        _live_models.add(self)

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the engine (pending requests end as cancelled) and release the model. Idempotent."""
        with self._engine_lock:
            engine, self._engine = self._engine, None
            self._model = None
        if engine is not None:
            engine.close()

    def _close_at_exit(self) -> None:
        # Not under _engine_lock: a daemon thread parked inside _require_engine may hold it for good.
        engine, self._engine = self._engine, None
        self._model = None
        if engine is not None:
            engine.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._model is None else self._info.path
        return f"<ohai.Model {state}>"

    @property
    def closed(self) -> bool:
        return self._model is None

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def n_ctx(self) -> int:
        """Context length of the engine in tokens (the KV cache all parallel requests share)."""
        return self._require_engine().n_ctx

    @property
    def parallel(self) -> int:
        """Requests decoded together (continuous batching)."""
        return self._require_engine().parallel

    def stats(self) -> dict[str, Any]:
        """What the engine is doing: running and queued requests, KV blocks used / cached / total,
        and counters (completed, cancelled, failed, rejected requests; preemptions; generated,
        decoded and cache-served prompt tokens); under "nnrt", the NNRt adapter's process-wide
        counters (operations offloaded, fallbacks and why, time on the device)."""
        stats: dict[str, Any] = dict(self._require_engine().stats())
        stats["nnrt"] = nnrt_stats()
        return stats

    # -- tokenizer ------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        text = _text("the text to tokenize", text)
        flags = _flag("add_special", add_special), _flag("parse_special", parse_special)
        return list(self._require_model().tokenize(text, *flags))

    def detokenize(self, tokens: Tokens, render_special: bool = False) -> str:
        token_list = _token_list(tokens)
        return str(self._require_model().detokenize(token_list, _flag("render_special", render_special)))

    # -- generation -----------------------------------------------------------------------
    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = _DEFAULT_MAX_TOKENS,
        temperature: float = _DEFAULT_SAMPLING.temperature,
        top_k: int = _DEFAULT_SAMPLING.top_k,
        top_p: float = _DEFAULT_SAMPLING.top_p,
        min_p: float = _DEFAULT_SAMPLING.min_p,
        repeat_penalty: float = _DEFAULT_SAMPLING.repeat_penalty,
        seed: int | None = None,
        stop: str | Sequence[str] = (),
    ) -> Completion:
        """Generate a completion of `prompt` (text, in which special tokens such as
        ``<|im_end|>`` are recognised, or token ids).

        temperature 0 is greedy; max_tokens=None runs until the context is full; `stop` strings end
        the completion and are not part of it; the same `seed` gives the same text. Ctrl-C cancels.
        """
        generation = self._submit(prompt, {
            "max_tokens": max_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p,
            "min_p": min_p, "repeat_penalty": repeat_penalty, "seed": seed, "stop": stop,
        })
        return _completion(generation.result())

    def _generate_json(self, prompt: Prompt, **options: Any) -> str:
        """generate() as the engine's one JSON shape (the same as `ohai-cli --json` and the
        ai_engine plugin): text, finish_reason, usage, timings."""
        return str(_core.completion_json(self._submit(prompt, options).result()))

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = _DEFAULT_MAX_TOKENS,
        temperature: float = _DEFAULT_SAMPLING.temperature,
        top_k: int = _DEFAULT_SAMPLING.top_k,
        top_p: float = _DEFAULT_SAMPLING.top_p,
        min_p: float = _DEFAULT_SAMPLING.min_p,
        repeat_penalty: float = _DEFAULT_SAMPLING.repeat_penalty,
        seed: int | None = None,
        stop: str | Sequence[str] = (),
    ) -> CompletionStream:
        """Like `generate`, but returns the text as it is produced. Pieces never split a UTF-8
        character; closing the iterator (or Ctrl-C) cancels the request."""
        generation = self._submit(prompt, {
            "max_tokens": max_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p,
            "min_p": min_p, "repeat_penalty": repeat_penalty, "seed": seed, "stop": stop,
        })
        return CompletionStream(generation, owner=self)

    @overload
    def chat(self, messages: Sequence[Message], *, stream: Literal[False] = ..., **options: Any) -> Completion: ...
    @overload
    def chat(self, messages: Sequence[Message], *, stream: Literal[True], **options: Any) -> CompletionStream: ...

    def chat(
        self, messages: Sequence[Message], *, stream: bool = False, **options: Any
    ) -> Completion | CompletionStream:
        """Answer a conversation of {"role", "content"} messages with the model's chat template."""
        streaming = _flag("stream", stream)
        prompt = self.apply_chat_template(messages)
        return self.stream(prompt, **options) if streaming else self.generate(prompt, **options)

    def apply_chat_template(self, messages: Sequence[Message], add_assistant: bool = True) -> str:
        pairs, add = _chat_pairs(messages), _flag("add_assistant", add_assistant)
        return str(_core.apply_chat_template(self._require_model(), pairs, add))

    # -- embeddings and logits ------------------------------------------------------------
    def embed(self, text_or_texts: str | Sequence[str], normalize: bool = True) -> np.ndarray:
        """Mean-pooled embeddings: shape (n_embd,) for one text, (n, n_embd) for a list."""
        single = isinstance(text_or_texts, str)
        texts: list[str]
        if isinstance(text_or_texts, str):
            texts = [_text("the text to embed", text_or_texts)]
        elif isinstance(text_or_texts, _BYTES_LIKE) or not isinstance(text_or_texts, (Sequence, np.ndarray)):
            raise InvalidRequestError(f"embed() takes a str or a list of str, not {_type_name(text_or_texts)}")
        else:
            texts = [_text(f"text {i} to embed", t) for i, t in enumerate(text_or_texts)]
        normalize = _flag("normalize", normalize)
        if not texts:
            return np.zeros((0, self._info.n_embd), dtype=np.float32)
        vectors = self._require_engine().embed(texts, normalize)
        return vectors[0] if single else vectors

    def logits(self, tokens: Tokens, prompt_tokens: int | None = None) -> np.ndarray:
        """Logits (len(tokens), n_vocab) for every position: tokens[:prompt_tokens] are decoded as
        one batch, the rest one by one through the KV cache."""
        token_list = _token_list(tokens)
        if not token_list:
            raise InvalidRequestError("tokens is empty")
        first = len(token_list) if prompt_tokens is None else prompt_tokens
        first = _check_int("prompt_tokens", first, minimum=1, maximum=len(token_list))
        return self._require_engine().logits(token_list, first)

    def bench(self, n_prompt: int = 512, n_gen: int = 128, repetitions: int = 3, threads: int = 0) -> list[dict[str, Any]]:
        """Prompt (pp) and generation (tg) throughput measured like llama-bench, on a context of its own."""
        n_prompt = _check_int("n_prompt", n_prompt, minimum=0, maximum=65536)
        n_gen = _check_int("n_gen", n_gen, minimum=0, maximum=65536)
        threads = _check_int("threads", threads, minimum=0, maximum=MAX_THREADS)
        repetitions = _check_int("repetitions", repetitions, minimum=1, maximum=1000)
        if n_prompt == 0 and n_gen == 0:
            raise InvalidRequestError("nothing to measure: n_prompt and n_gen are both 0")
        # Beyond the training context a model's output means nothing, and the run takes minutes.
        n_ctx_train = self._info.n_ctx_train
        if n_ctx_train > 0 and n_prompt + n_gen > n_ctx_train:
            raise InvalidRequestError(
                f"n_prompt + n_gen is {n_prompt + n_gen} tokens, more than the model's training context "
                f"({n_ctx_train} tokens)"
            )
        results = _core.bench(self._require_model(), n_prompt, n_gen, repetitions, threads)
        return [
            {"model": os.path.basename(self._info.path), "test": r.test, "n_prompt": r.n_prompt, "n_gen": r.n_gen,
             "n_threads": r.n_threads, "avg_ts": r.avg_ts, "stddev_ts": r.stddev_ts, "samples_ts": list(r.samples_ts)}
            for r in results
        ]

    # -- OpenAI-shaped responses ----------------------------------------------------------
    def create_completion(self, prompt: Prompt, *, stream: bool = False, **options: Any) -> Any:
        """An OpenAI `text_completion` dict, or an iterator of chunks with stream=True."""
        if _flag("stream", stream):
            return openai_format.completion_chunks(self, self.stream(prompt, **options))
        return openai_format.completion(self, self.generate(prompt, **options))

    def create_chat_completion(self, messages: Sequence[Message], *, stream: bool = False, **options: Any) -> Any:
        """An OpenAI `chat.completion` dict, or an iterator of `chat.completion.chunk` dicts."""
        if _flag("stream", stream):
            return openai_format.chat_chunks(self, self.chat(messages, stream=True, **options))
        return openai_format.chat_completion(self, self.chat(messages, **options))

    # -- internals ------------------------------------------------------------------------
    def _require_model(self) -> _core.Model:
        if self._model is None:
            raise _closed_error()
        return self._model

    def _require_engine(self) -> _core.Engine:
        # The context (KV cache, worker thread) is created on first use, so that loading a
        # model only to read its info or tokenize costs no context memory.
        with self._engine_lock:
            model = self._model
            if model is None:
                raise _closed_error()
            if model.vocab_only:
                raise OhaiError("the model was loaded with vocab_only=True: it can tokenize but not generate")
            if self._engine is None:
                self._engine = _core.Engine(model, n_ctx=self._n_ctx, threads=self._threads, parallel=self._parallel,
                                            kv_type=self._kv_type, max_queued=self._max_queued)
            return self._engine

    def _submit(self, prompt: Prompt, options: dict[str, Any]) -> _core.Generation:
        return self._require_engine().submit(_request(prompt, **options))


def _request(
    prompt: Prompt,
    *,
    max_tokens: int | None = _DEFAULT_MAX_TOKENS,
    temperature: float = _DEFAULT_SAMPLING.temperature,
    top_k: int = _DEFAULT_SAMPLING.top_k,
    top_p: float = _DEFAULT_SAMPLING.top_p,
    min_p: float = _DEFAULT_SAMPLING.min_p,
    repeat_penalty: float = _DEFAULT_SAMPLING.repeat_penalty,
    seed: int | None = None,
    stop: str | Sequence[str] = (),
) -> _core.GenerateRequest:
    req = _core.GenerateRequest()
    if isinstance(prompt, str):
        req.prompt = _text("prompt", prompt)
    else:
        req.prompt_tokens = _token_list(prompt, "prompt", expected="a str or a sequence of integer token ids")
        if not req.prompt_tokens:
            raise InvalidRequestError("the prompt is empty")
    if max_tokens is None:
        req.max_tokens = -1
    else:
        req.max_tokens = _check_int("max_tokens", max_tokens, minimum=0)
    s = req.sampling
    s.temperature = _number("temperature", temperature)
    s.top_k = _check_int("top_k", top_k, minimum=0)
    s.top_p = _number("top_p", top_p)
    s.min_p = _number("min_p", min_p)
    s.repeat_penalty = _number("repeat_penalty", repeat_penalty)
    if seed is not None:
        s.seed = _check_int("seed", seed, minimum=0, maximum=_SEED_LIMIT - 1)
    req.stop = _stop_list(stop)
    req.sampling = s
    return req


# Every argument is checked here before it reaches pybind11: a value pybind11 cannot convert
# makes it raise "TypeError: incompatible function arguments", which is not an OhaiError and
# quotes the whole argument (a prompt of megabytes) in its message.

_BYTES_LIKE = (bytes, bytearray, memoryview)
# array.array typecodes whose items are bytes or characters, not token ids.
_BYTE_TYPECODES = frozenset("bBuw")


def _type_name(value: object) -> str:
    return type(value).__name__


def _text(what: str, value: object) -> str:
    """`value` if it is a str that can be encoded as UTF-8. A str may hold lone surrogates
    ("\\ud800", or os.fsdecode's escapes of undecodable bytes) that have no UTF-8 form, so the
    engine could never see them; the message names the position, never the text."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a str, not {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"{what} is not valid Unicode text: it holds a lone surrogate U+{ord(value[exc.start]):04X} "
            f"at index {exc.start}, which has no UTF-8 encoding"
        ) from None
    return value


def _flag(name: str, value: object) -> bool:
    # Truthiness would read flag="no" as True: only real booleans (and 0/1) are flags.
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise InvalidRequestError(f"{name} must be True or False, not {_type_name(value)}")


def _check_int(name: str, value: object, *, minimum: int, maximum: int = 2**31 - 1) -> int:
    """`value` as an int in [minimum, maximum] (NumPy integers too, but not bools)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidRequestError(f"{name} must be an integer, not {_type_name(value)}")
    number = int(value)
    if number < minimum:
        raise InvalidRequestError(f"{name} must be >= {minimum}")
    if number > maximum:
        raise InvalidRequestError(f"{name} must be <= {maximum}")
    return number


def _number(name: str, value: object) -> float:
    """`value` as a finite float: NaN compares false with every bound the engine checks."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidRequestError(f"{name} must be a number, not {_type_name(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        number = math.inf
    if not math.isfinite(number):
        raise InvalidRequestError(f"{name} must be a finite number")
    return number


def _token_list(
    tokens: object, what: str = "tokens", *, expected: str = "a sequence of integer token ids"
) -> list[int]:
    """Token ids as a list of int for pybind11: any sequence of integers or a 1-D NumPy integer
    array. Bytes-like objects iterate as integers too, but whoever passes them meant text."""
    values: Iterable[object]
    if isinstance(tokens, np.ndarray):
        if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
            raise InvalidRequestError(
                f"{what} must be a 1-D array of integer token ids, not a {tokens.ndim}-D {tokens.dtype} array"
            )
        values = tokens.tolist()
    elif (
        isinstance(tokens, (str, *_BYTES_LIKE))
        or (isinstance(tokens, array.array) and tokens.typecode in _BYTE_TYPECODES)
        or not isinstance(tokens, (Sequence, array.array))
    ):
        raise InvalidRequestError(f"{what} must be {expected}, not {_type_name(tokens)}")
    else:
        values = tokens
    out: list[int] = []
    for i, t in enumerate(values):
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
            raise InvalidRequestError(f"{what} holds a {_type_name(t)} at index {i}: token ids are integers")
        if not -(2**31) <= int(t) < 2**31:
            raise InvalidRequestError(f"token id at index {i} of {what} is out of range")
        out.append(int(t))
    return out


def _stop_list(stop: object) -> list[str]:
    if isinstance(stop, str):
        stops: list[object] = [stop]
    elif isinstance(stop, (Sequence, set, frozenset)) and not isinstance(stop, _BYTES_LIKE):
        stops = list(stop)
    else:
        raise InvalidRequestError(f"stop must be a str or a list of str, not {_type_name(stop)}")
    # An empty stop string would end every completion before its first token.
    return [s for s in (_text(f"stop string {i}", x) for i, x in enumerate(stops)) if s]


def _model_path(path: object, what: str = "the model path", *, allow_default: bool = True) -> tuple[bytes, str]:
    """A file path as bytes for the engine and as the str the caller gave (ModelInfo.path);
    None means the default model unless `allow_default` is False.

    Bytes reach the file system unchanged, so a file name that is not UTF-8 (which Python hands
    around surrogate-escaped) still opens; as a str, pybind11 would refuse it. C++ sees a
    NUL-terminated name, so a NUL inside would open the file named by the part before it.
    """
    if path is None and allow_default:
        path = default_model_path()
    try:
        name = os.fspath(path)  # type: ignore[call-overload]  # anything else is refused below
    except TypeError:
        raise InvalidRequestError(f"{what} must be a str or os.PathLike, not {_type_name(path)}") from None
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:
        raise InvalidRequestError(f"{what} cannot be encoded for the file system (it holds a lone surrogate)") from None
    if b"\0" in raw:
        raise InvalidRequestError(f"{what} contains a NUL character")
    return raw, name if isinstance(name, str) else os.fsdecode(name)


def _chat_pairs(messages: object) -> list[tuple[str, str]]:
    if isinstance(messages, (str, *_BYTES_LIKE)) or not isinstance(messages, Sequence) or not messages:
        raise InvalidRequestError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    pairs = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(f"message {i} is not a dict")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise InvalidRequestError(f"message {i} has no 'role' string")
        if not isinstance(content, str):
            raise InvalidRequestError(f"message {i} has no 'content' string")
        pairs.append((_text(f"the role of message {i}", role), _text(f"the content of message {i}", content)))
    return pairs


def _completion(raw: _core.Completion) -> Completion:
    t = raw.timings
    return Completion(
        text=raw.text,
        tokens=list(raw.tokens),
        finish_reason=raw.finish_reason,
        usage=Usage(raw.usage.prompt_tokens, raw.usage.completion_tokens, raw.usage.cached_prompt_tokens),
        timings=Timings(t.prompt_ms, t.decode_ms, t.prompt_per_second, t.decode_per_second),
    )


class CompletionStream(Iterator[str]):
    """Text pieces of a running request, as `Model.stream` and `Model.chat(stream=True)` return them.

    `close()` cancels the request (safe from any thread); once the iterator is exhausted,
    `completion` holds the final `Completion` (finish reason, usage, timings).
    """

    def __init__(self, generation: _core.Generation, owner: Model) -> None:
        self._generation = generation
        self._process = _process_generation
        self._owner = owner  # a stream keeps its model open: `Model(p).stream(...)` must not be cancelled
        self.completion: Completion | None = None

    def __iter__(self) -> CompletionStream:
        return self

    def __next__(self) -> str:
        if self._process != _process_generation:
            raise OhaiError("this stream was started in the parent process before fork(); "
                            "start a new one in the child")
        try:
            return next(self._generation)
        except StopIteration:
            if self.completion is None:
                self.completion = _completion(self._generation.result())
            raise
        except BaseException:
            self._generation.cancel()
            raise

    def close(self) -> None:
        if self._process == _process_generation:
            self._generation.cancel()

    def __del__(self) -> None:
        if self._process == _process_generation:
            self._generation.cancel()
        else:
            # A parent thread may have been waiting on it at the fork: freeing it here would wait
            # for that thread, which the child does not have.
            _abandoned_in_child.append(self._generation)


# -- process lifetime: interpreter exit and fork() ------------------------------------------
#
# Interpreter exit with daemon threads still inside generate/stream/embed/bench: their engines'
# worker threads would keep running llama.cpp while the process tears down its static state, and
# the threads themselves would be ended by force when they take the GIL back. So, while the
# interpreter is still fully alive, this atexit handler stops every benchmark and engine (queued
# and running requests end as cancelled, the workers are joined), and from then on every thread
# other than the exiting one parks for good when it comes back from ohai's native code, instead of
# running Python code (or raising "the model is closed") in a process that is ending.
_live_models: weakref.WeakSet[Model] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    _core._begin_exit()
    for model in list(_live_models):
        model._close_at_exit()
    # Threads still in a native call (tokenizing, creating an engine, ...) finish it and park.
    _core._wait_for_native_calls(timeout=30.0)


atexit.register(_close_all_at_exit)


def _closed_error() -> OhaiError:
    _core._park_if_exiting()
    return OhaiError("the model is closed")


# fork(): the child has the memory of every Model but none of the threads behind them. An engine
# created before the fork refuses every request in the child with a clear error (checked natively);
# a Model whose engine did not exist yet, and every new Model, works in the child. The lock that
# guards engine creation may have been held by a parent thread at the fork, so it is replaced, and
# streams started in the parent are left alone (see CompletionStream).
_process_generation = 0
_abandoned_in_child: list[_core.Generation] = []


def _after_fork_in_child() -> None:
    global _process_generation
    _process_generation += 1
    for model in list(_live_models):
        model._engine_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
