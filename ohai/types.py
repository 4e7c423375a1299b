"""Plain result types returned by the Python API."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    # The path exactly as the caller gave it (bytes and PathLike as os.fsdecode/os.fspath make them),
    # not as the engine stored it: a file name that is not UTF-8 keeps its surrogate escapes, so
    # os.fsencode(info.path) names the same file.
    path: str
    arch: str
    n_params: int
    size_bytes: int
    n_ctx_train: int
    n_vocab: int
    file_type: str
    chat_template: str
    description: str = ""
    n_embd: int = 0
    n_layer: int = 0
    device: str = "cpu"   # what the model computes on: "cpu" or "nnrt:<device name>"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0  # of prompt_tokens, those served from the prefix cache

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        # OpenAI's shape: cached prompt tokens under prompt_tokens_details.
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_prompt_tokens}}


@dataclass(frozen=True)
class Timings:
    prompt_ms: float
    decode_ms: float
    prompt_per_second: float
    decode_per_second: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: list[int] = field(repr=False)
    finish_reason: str  # "stop", "length" or "cancelled"
    usage: Usage
    timings: Timings

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "timings": self.timings.to_dict(),
        }
