"""Where ohai computes: the CPU, and NNRt accelerators (OpenHarmony's Neural Network Runtime) when
the system has them. Matrix multiplications of prompt processing go to the accelerator; everything
else, and every failure of it, runs on the CPU."""
from __future__ import annotations

from typing import Any

from . import _core
from ._core import InvalidRequestError

DEVICE_CHOICES = ("auto", "cpu", "nnrt")


def check_device(device: object) -> str:
    """`device` if it names a device choice: "auto", "cpu", "nnrt" or "nnrt:<name>"."""
    if not isinstance(device, str):
        raise InvalidRequestError(f"device must be a str, not {type(device).__name__}")
    if device in DEVICE_CHOICES or (device.startswith("nnrt:") and len(device) > 5 and "\0" not in device):
        return device
    raise InvalidRequestError('device must be "auto", "cpu", "nnrt" or "nnrt:<name>"')


def devices() -> dict[str, Any]:
    """``{"devices": [{"name", "kind", "type", "description", "supported_ops"}, ...], "nnrt_status"}``:
    the CPU first, then each NNRt accelerator; ``nnrt_status`` says why there is none."""
    info = dict(_core.list_devices())
    info["devices"] = [dict(d) for d in info["devices"]]
    for d in info["devices"]:
        d["supported_ops"] = list(d["supported_ops"])
    return info


def nnrt_stats() -> dict[str, Any]:
    """What the NNRt adapter did in this process: operations offloaded and fallen back (with the
    reasons), executors built, build and run failures, time on the device, whether it was disabled."""
    stats = dict(_core.nnrt_stats())
    stats["fallback_reasons"] = dict(stats["fallback_reasons"])
    return stats


def set_nnrt_options(*, min_batch: int | None = None, dequantize: bool | None = None,
                     cache_dir: str | None = None) -> dict[str, Any]:
    """Process-wide settings of the NNRt adapter; returns them. ``min_batch``: matrix
    multiplications over fewer tokens stay on the CPU (default 32: prompt processing only);
    ``dequantize``: quantized weights go to the device as F16 (memory: ~2 bytes per weight for each
    compiled row bucket and context) instead of staying on the CPU; ``cache_dir``: NNRt's compilation cache."""
    current = dict(_core.nnrt_settings())
    if min_batch is not None:
        if isinstance(min_batch, bool) or not isinstance(min_batch, int) or not 1 <= min_batch <= 65536:
            raise InvalidRequestError("min_batch must be an integer in [1, 65536]")
        current["min_batch"] = min_batch
    if dequantize is not None:
        if not isinstance(dequantize, bool):
            raise InvalidRequestError("dequantize must be True or False")
        current["dequantize"] = dequantize
    if cache_dir is not None:
        if not isinstance(cache_dir, str) or "\0" in cache_dir:
            raise InvalidRequestError("cache_dir must be a str without NUL characters")
        current["cache_dir"] = cache_dir
    _core.set_nnrt_settings(current["min_batch"], current["dequantize"], current["cache_dir"])
    return dict(_core.nnrt_settings())
