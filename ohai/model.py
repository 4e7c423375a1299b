"""`ohai.Model`: a loaded GGUF model and the engine that serves it."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Union, overload

import numpy as np

from . import _core, openai_format
from ._core import InvalidRequestError, OhaiError
from .default_model import default_model_path
from .types import Completion, ModelInfo, Timings, Usage

Prompt = Union[str, Sequence[int]]
Message = Mapping[str, str]

# llama.cpp reads seed 0xFFFFFFFF as "pick a random one", so the last reproducible seed is one below.
_SEED_LIMIT = 2**32 - 1
MAX_CONTEXT = 2**20
MAX_THREADS = 512  # ggml's limit


class Model:
    """A GGUF model loaded (memory-mapped) into ohai's native engine.

    ``Model()`` loads the default model; ``Model("x.gguf", n_ctx=4096, threads=2)`` any other.
    With ``vocab_only=True`` only the tokenizer is loaded. Many threads may call
    `generate`/`stream` at once: requests queue up and each caller gets its own result.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 0,
        threads: int = 0,
        vocab_only: bool = False,
    ) -> None:
        self._engine: _core.Engine | None = None
        self._model: _core.Model | None = None
        self._engine_lock = threading.Lock()
        _check_int("n_ctx", n_ctx, minimum=0, maximum=MAX_CONTEXT)
        _check_int("threads", threads, minimum=0, maximum=MAX_THREADS)
        self._n_ctx, self._threads = n_ctx, threads
        resolved = default_model_path() if path is None else os.fspath(path)
        self._model = _core.Model(resolved, vocab_only=bool(vocab_only))
        raw = self._model.info
        self._info = ModelInfo(
            path=raw.path, arch=raw.arch, n_params=raw.n_params, size_bytes=raw.size_bytes,
            n_ctx_train=raw.n_ctx_train, n_vocab=raw.n_vocab, file_type=raw.file_type,
            chat_template=raw.chat_template, description=raw.description, n_embd=raw.n_embd,
            n_layer=raw.n_layer,
        )

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the engine (pending requests end as cancelled) and release the model. Idempotent."""
        with self._engine_lock:
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
        """Context length of the engine in tokens."""
        return self._require_engine().n_ctx

    # -- tokenizer ------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise InvalidRequestError("tokenize() takes a str")
        return list(self._require_model().tokenize(text, add_special, parse_special))

    def detokenize(self, tokens: Sequence[int], render_special: bool = False) -> str:
        return str(self._require_model().detokenize(_token_list(tokens), render_special))

    # -- generation -----------------------------------------------------------------------
    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
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

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = 256,
        temperature: float = 0.8,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
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
        prompt = self.apply_chat_template(messages)
        return self.stream(prompt, **options) if stream else self.generate(prompt, **options)

    def apply_chat_template(self, messages: Sequence[Message], add_assistant: bool = True) -> str:
        return str(_core.apply_chat_template(self._require_model(), _chat_pairs(messages), add_assistant))

    # -- embeddings and logits ------------------------------------------------------------
    def embed(self, text_or_texts: str | Sequence[str], normalize: bool = True) -> np.ndarray:
        """Mean-pooled embeddings: shape (n_embd,) for one text, (n, n_embd) for a list."""
        single = isinstance(text_or_texts, str)
        texts: list[str] = [text_or_texts] if isinstance(text_or_texts, str) else list(text_or_texts)
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError("embed() takes a str or a list of str")
        if not texts:
            return np.zeros((0, self._info.n_embd), dtype=np.float32)
        vectors = self._require_engine().embed(texts, bool(normalize))
        return vectors[0] if single else vectors

    def logits(self, tokens: Sequence[int], prompt_tokens: int | None = None) -> np.ndarray:
        """Logits (len(tokens), n_vocab) for every position: tokens[:prompt_tokens] are decoded as
        one batch, the rest one by one through the KV cache."""
        token_list = _token_list(tokens)
        first = len(token_list) if prompt_tokens is None else prompt_tokens
        _check_int("prompt_tokens", first, minimum=1)
        return self._require_engine().logits(token_list, first)

    def bench(self, n_prompt: int = 512, n_gen: int = 128, repetitions: int = 3, threads: int = 0) -> list[dict[str, Any]]:
        """Prompt (pp) and generation (tg) throughput measured like llama-bench, on a context of its own."""
        _check_int("n_prompt", n_prompt, minimum=0, maximum=65536)
        _check_int("n_gen", n_gen, minimum=0, maximum=65536)
        _check_int("threads", threads, minimum=0, maximum=MAX_THREADS)
        _check_int("repetitions", repetitions, minimum=1, maximum=1000)
        results = _core.bench(self._require_model(), n_prompt, n_gen, repetitions, threads)
        return [
            {"model": os.path.basename(self._info.path), "test": r.test, "n_prompt": r.n_prompt, "n_gen": r.n_gen,
             "n_threads": r.n_threads, "avg_ts": r.avg_ts, "stddev_ts": r.stddev_ts, "samples_ts": list(r.samples_ts)}
            for r in results
        ]

    # -- OpenAI-shaped responses ----------------------------------------------------------
    def create_completion(self, prompt: Prompt, *, stream: bool = False, **options: Any) -> Any:
        """An OpenAI `text_completion` dict, or an iterator of chunks with stream=True."""
        if stream:
            return openai_format.completion_chunks(self, self.stream(prompt, **options))
        return openai_format.completion(self, self.generate(prompt, **options))

    def create_chat_completion(self, messages: Sequence[Message], *, stream: bool = False, **options: Any) -> Any:
        """An OpenAI `chat.completion` dict, or an iterator of `chat.completion.chunk` dicts."""
        if stream:
            return openai_format.chat_chunks(self, self.chat(messages, stream=True, **options))
        return openai_format.chat_completion(self, self.chat(messages, **options))

    # -- internals ------------------------------------------------------------------------
    def _require_model(self) -> _core.Model:
        if self._model is None:
            raise OhaiError("the model is closed")
        return self._model

    def _require_engine(self) -> _core.Engine:
        # The context (KV cache, worker thread) is created on first use, so that loading a
        # model only to read its info or tokenize costs no context memory.
        with self._engine_lock:
            model = self._model
            if model is None:
                raise OhaiError("the model is closed")
            if model.vocab_only:
                raise OhaiError("the model was loaded with vocab_only=True: it can tokenize but not generate")
            if self._engine is None:
                self._engine = _core.Engine(model, n_ctx=self._n_ctx, threads=self._threads)
            return self._engine

    def _submit(self, prompt: Prompt, options: dict[str, Any]) -> _core.Generation:
        return self._require_engine().submit(_request(prompt, **options))


def _request(
    prompt: Prompt,
    *,
    max_tokens: int | None = 256,
    temperature: float = 0.8,
    top_k: int = 40,
    top_p: float = 0.95,
    min_p: float = 0.05,
    repeat_penalty: float = 1.0,
    seed: int | None = None,
    stop: str | Sequence[str] = (),
) -> _core.GenerateRequest:
    req = _core.GenerateRequest()
    if isinstance(prompt, str):
        req.prompt = prompt
    elif isinstance(prompt, (bytes, bytearray)) or not isinstance(prompt, Sequence):
        raise InvalidRequestError("prompt must be a str or a list of token ids")
    else:
        req.prompt_tokens = _token_list(prompt)  # type: ignore[arg-type]  # str handled above
        if not req.prompt_tokens:
            raise InvalidRequestError("the prompt is empty")
    if max_tokens is None:
        req.max_tokens = -1
    else:
        _check_int("max_tokens", max_tokens, minimum=0)
        req.max_tokens = max_tokens
    s = req.sampling
    s.temperature = _number("temperature", temperature)
    _check_int("top_k", top_k, minimum=0)
    s.top_k = top_k
    s.top_p = _number("top_p", top_p)
    s.min_p = _number("min_p", min_p)
    s.repeat_penalty = _number("repeat_penalty", repeat_penalty)
    if seed is not None:
        _check_int("seed", seed, minimum=0, maximum=_SEED_LIMIT - 1)
        s.seed = seed
    stops = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(x, str) for x in stops):
        raise InvalidRequestError("stop must be a str or a list of str")
    req.stop = [x for x in stops if x]
    req.sampling = s
    return req


def _check_int(name: str, value: object, *, minimum: int, maximum: int = 2**31 - 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an integer")
    if value < minimum:
        raise InvalidRequestError(f"{name} must be >= {minimum}")
    if value > maximum:
        raise InvalidRequestError(f"{name} must be <= {maximum}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{name} must be a number")
    return float(value)


def _token_list(tokens: Sequence[int]) -> list[int]:
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, (Sequence, np.ndarray)):
        raise InvalidRequestError("tokens must be a list of integers")
    out: list[int] = []
    for t in tokens:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise InvalidRequestError("tokens must be a list of integers")
        if not -(2**31) <= int(t) < 2**31:
            raise InvalidRequestError(f"token id {int(t)} is out of range")
        out.append(int(t))
    return out


def _chat_pairs(messages: Sequence[Message]) -> list[tuple[str, str]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
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
        pairs.append((role, content))
    return pairs


def _completion(raw: _core.Completion) -> Completion:
    t = raw.timings
    return Completion(
        text=raw.text,
        tokens=list(raw.tokens),
        finish_reason=raw.finish_reason,
        usage=Usage(raw.usage.prompt_tokens, raw.usage.completion_tokens),
        timings=Timings(t.prompt_ms, t.decode_ms, t.prompt_per_second, t.decode_per_second),
    )


class CompletionStream(Iterator[str]):
    """Text pieces of a running request, as `Model.stream` and `Model.chat(stream=True)` return them.

    `close()` cancels the request (safe from any thread); once the iterator is exhausted,
    `completion` holds the final `Completion` (finish reason, usage, timings).
    """

    def __init__(self, generation: _core.Generation, owner: Model) -> None:
        self._generation = generation
        self._owner = owner  # a stream keeps its model open: `Model(p).stream(...)` must not be cancelled
        self.completion: Completion | None = None

    def __iter__(self) -> CompletionStream:
        return self

    def __next__(self) -> str:
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
        self._generation.cancel()

    def __del__(self) -> None:
        self._generation.cancel()


