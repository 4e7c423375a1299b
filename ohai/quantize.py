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
    overwrite: bool = False,
) -> None:
    """Quantize `src` into `dst` at `type` with llama.cpp's quantizer.

    The work runs in a helper process: Ctrl-C (KeyboardInterrupt) stops it, and `dst` is then
    left as it was. `progress(done, total)` is called as tensors are written. An existing `dst` is
    replaced only with `overwrite=True`, and only if it is a regular file; the new file gets the
    permissions any new file gets under the umask. Raises ModelLoadError for a bad source
    (including one without tensors) and InvalidRequestError for an unknown type or a bad `dst`.
    """
    # The public API's argument checks (one wording, no pybind11 TypeError quoting the input).
    from .model import MAX_THREADS, _check_int, _flag, _model_path, _text

    if not isinstance(type, str):
        raise _core.InvalidRequestError("quantization type must be a string such as 'Q4_0'")
    type = _text("the quantization type", type)
    threads = _check_int("threads", threads, minimum=0, maximum=MAX_THREADS)
    if progress is not None and not callable(progress):
        raise _core.InvalidRequestError("progress must be a callable progress(done, total) or None")
    overwrite = _flag("overwrite", overwrite)
    src_raw, _ = _model_path(src, "src", allow_default=False)
    dst_raw, _ = _model_path(dst, "dst", allow_default=False)
    _core.quantize(src_raw, dst_raw, type.upper(), threads, progress, overwrite)
