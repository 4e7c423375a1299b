"""OpenAI-shaped completion, chat-completion and embedding dicts (and stream chunks).

`Model.create_completion` / `create_chat_completion` and `ohai serve` build their responses here, so the
Python API and the HTTP server speak the same shapes. ``model_name`` overrides the name responses carry
(default: the model file's base name).
"""
from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .model import CompletionStream, Model
    from .types import Completion, Usage


def default_model_name(model: Model) -> str:
    return os.path.basename(model.info.path)


def _name(model: Model, model_name: str | None) -> str:
    return default_model_name(model) if model_name is None else model_name


def new_id(prefix: str) -> tuple[str, int]:
    """A fresh response id ("cmpl-…", "chatcmpl-…") and its creation time (Unix seconds)."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}", int(time.time())


def finish_reason(reason: str) -> str:
    # OpenAI has no "cancelled"; a cancelled request simply stopped.
    return "stop" if reason == "cancelled" else reason


# -- whole responses ---------------------------------------------------------------------------
def completion(model: Model, c: Completion, *, model_name: str | None = None, echo: str = "") -> dict[str, Any]:
    """A `text_completion`; `echo` is put before the generated text (OpenAI's ``echo: true``)."""
    cid, created = new_id("cmpl")
    return {
        "id": cid, "object": "text_completion", "created": created, "model": _name(model, model_name),
        "choices": [{"index": 0, "text": echo + c.text, "logprobs": None, "finish_reason": finish_reason(c.finish_reason)}],
        "usage": c.usage.to_dict(),
    }


def chat_completion(model: Model, c: Completion, *, model_name: str | None = None) -> dict[str, Any]:
    cid, created = new_id("chatcmpl")
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": _name(model, model_name),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": c.text},
            "logprobs": None,
            "finish_reason": finish_reason(c.finish_reason),
        }],
        "usage": c.usage.to_dict(),
    }


# -- stream chunks -----------------------------------------------------------------------------
class ChunkFactory:
    """The chunks of one streamed response: they share its id, creation time and model name.

    With ``include_usage`` (OpenAI's ``stream_options.include_usage``) every chunk carries
    ``"usage": null`` and `usage_chunk` makes the final one, with empty ``choices``.
    """

    def __init__(self, kind: str, model_name: str, *, include_usage: bool = False) -> None:
        if kind not in ("completion", "chat"):
            raise ValueError(f"kind must be 'completion' or 'chat', not {kind!r}")
        self.kind = kind
        self.object = "text_completion" if kind == "completion" else "chat.completion.chunk"
        self.id, self.created = new_id("cmpl" if kind == "completion" else "chatcmpl")
        self.model_name = model_name
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {"id": self.id, "object": self.object, "created": self.created,
                                 "model": self.model_name, "choices": choices}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> dict[str, Any] | None:
        """The opening chunk: chat announces the assistant role; completions have none."""
        if self.kind == "chat":
            return self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                 "finish_reason": None}])
        return None

    def text(self, piece: str) -> dict[str, Any]:
        if self.kind == "chat":
            return self._chunk([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
        return self._chunk([{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}])

    def finish(self, reason: str) -> dict[str, Any]:
        if self.kind == "chat":
            return self._chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason(reason)}])
        return self._chunk([{"index": 0, "text": "", "logprobs": None, "finish_reason": finish_reason(reason)}])

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        chunk = self._chunk([])
        chunk["usage"] = usage.to_dict()
        return chunk


def _chunks(factory: ChunkFactory, pieces: CompletionStream) -> Iterator[dict[str, Any]]:
    try:
        first = factory.start()
        if first is not None:
            yield first
        for piece in pieces:
            yield factory.text(piece)
        done = pieces.completion
        yield factory.finish(done.finish_reason if done else "stop")
        if factory.include_usage and done is not None:
            yield factory.usage_chunk(done.usage)
    finally:
        pieces.close()


def completion_chunks(
    model: Model, pieces: CompletionStream, *, model_name: str | None = None, include_usage: bool = False
) -> Iterator[dict[str, Any]]:
    return _chunks(ChunkFactory("completion", _name(model, model_name), include_usage=include_usage), pieces)


def chat_chunks(
    model: Model, pieces: CompletionStream, *, model_name: str | None = None, include_usage: bool = False
) -> Iterator[dict[str, Any]]:
    return _chunks(ChunkFactory("chat", _name(model, model_name), include_usage=include_usage), pieces)


# -- embeddings and models ---------------------------------------------------------------------
def embeddings(
    vectors: np.ndarray, *, model_name: str, prompt_tokens: int, encoding_format: str = "float"
) -> dict[str, Any]:
    """An embeddings `list`: one row of `vectors` per input; "base64" packs each row as
    little-endian float32 bytes, as OpenAI does."""
    import numpy as np

    rows = np.asarray(vectors, dtype="<f4")
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    data: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        embedding: Any
        if encoding_format == "base64":
            embedding = base64.b64encode(np.ascontiguousarray(row).tobytes()).decode("ascii")
        elif encoding_format == "float":
            embedding = row.astype(float).tolist()
        else:
            raise ValueError(f"encoding_format must be 'float' or 'base64', not {encoding_format!r}")
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    return {"object": "list", "data": data, "model": model_name,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def model_object(model_name: str, *, created: int, owned_by: str = "ohai",
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"id": model_name, "object": "model", "created": created, "owned_by": owned_by, **(extra or {})}


def model_list(models: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": list(models)}
