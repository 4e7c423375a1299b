"""Write a GGUF model at another quantization type."""
from __future__ import annotations

import os
from typing import Callable

from . import _core

ProgressCallback = Callable[[int, int], None]


def quantize_types() -> list[str]:
    """The type names `quantize` accepts (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K_M, F16, ...)."""
    return list(_core.quantize_types())


def quantize(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    type: str,
    *,
    threads: int = 0,
    progress: ProgressCallback | None = None,
) -> None:
    """Quantize `src` into `dst` at `type` with llama.cpp's quantizer.

    `progress(done, total)` is called as tensors are written. Raises ModelLoadError for a bad
    source and InvalidRequestError for an unknown type.
    """
    if not isinstance(type, str):
        raise _core.InvalidRequestError("quantization type must be a string such as 'Q4_0'")
    if threads < 0:
        raise _core.InvalidRequestError("threads must be >= 0")
    _core.quantize(os.fspath(src), os.fspath(dst), type.upper(), threads, progress)
