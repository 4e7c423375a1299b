"""OpenAI-shaped completion and chat-completion dicts (and stream chunks)."""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import CompletionStream, Model
    from .types import Completion


def _model_name(model: Model) -> str:
    return os.path.basename(model.info.path)


def _ids(prefix: str) -> tuple[str, int]:
    return f"{prefix}-{uuid.uuid4().hex[:24]}", int(time.time())


def _finish(reason: str) -> str:
    # OpenAI has no "cancelled"; a cancelled request simply stopped.
    return "stop" if reason == "cancelled" else reason


def completion(model: Model, c: Completion) -> dict[str, Any]:
    cid, created = _ids("cmpl")
    return {
        "id": cid, "object": "text_completion", "created": created, "model": _model_name(model),
        "choices": [{"index": 0, "text": c.text, "logprobs": None, "finish_reason": _finish(c.finish_reason)}],
        "usage": c.usage.to_dict(),
    }


def chat_completion(model: Model, c: Completion) -> dict[str, Any]:
    cid, created = _ids("chatcmpl")
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": _model_name(model),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": c.text},
            "logprobs": None,
            "finish_reason": _finish(c.finish_reason),
        }],
        "usage": c.usage.to_dict(),
    }


def completion_chunks(model: Model, pieces: CompletionStream) -> Iterator[dict[str, Any]]:
    cid, created = _ids("cmpl")
    name = _model_name(model)
    try:
        for piece in pieces:
            yield {"id": cid, "object": "text_completion", "created": created, "model": name,
                   "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}]}
        reason = _finish(pieces.completion.finish_reason) if pieces.completion else "stop"
        yield {"id": cid, "object": "text_completion", "created": created, "model": name,
               "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": reason}]}
    finally:
        pieces.close()


def chat_chunks(model: Model, pieces: CompletionStream) -> Iterator[dict[str, Any]]:
    cid, created = _ids("chatcmpl")
    name = _model_name(model)

    def chunk(delta: dict[str, str], reason: str | None) -> dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

    try:
        yield chunk({"role": "assistant", "content": ""}, None)
        for piece in pieces:
            yield chunk({"content": piece}, None)
        done = pieces.completion
        yield chunk({}, _finish(done.finish_reason) if done else "stop")
    finally:
        pieces.close()
