"""Request defaults, read from the engine: they are defined once, in C++ (`SamplingParams`,
`GenerateRequest` in plugin/include/ohai/generation.h), and the Python API, the CLI and the
server show and use the same values."""
from __future__ import annotations

from dataclasses import dataclass

from . import _core


@dataclass(frozen=True)
class SamplingDefaults:
    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repeat_penalty: float


def _from_engine() -> SamplingDefaults:
    s = _core.SamplingParams()
    # The engine holds float32: 0.8 comes back as 0.800000011920929; show the value it was written as.
    return SamplingDefaults(
        max_tokens=int(_core.GenerateRequest().max_tokens),
        temperature=round(float(s.temperature), 6),
        top_k=int(s.top_k),
        top_p=round(float(s.top_p), 6),
        min_p=round(float(s.min_p), 6),
        repeat_penalty=round(float(s.repeat_penalty), 6),
    )


SAMPLING = _from_engine()
