"""What this build of ohai runs on: the CPU instruction sets its kernels were built to use, which of
them this CPU supports, and llama.cpp's own summary."""
from __future__ import annotations

from typing import Any

from . import _core


def system_info() -> dict[str, Any]:
    """A JSON-ready description of the build and the CPU.

    ``cpu_target``: "native" or the portable level (e.g. "x86-64-v3"); ``amx_enabled``: whether
    Intel AMX kernels were built in (``OHAI_AMX=ON``); ``features``: for each instruction set,
    whether the build may use it (``built``), whether this CPU offers it (``supported``) and so
    whether it is ``used``; ``missing``: built but unsupported (models then refuse to load);
    ``llama_system_info``: llama.cpp's one-line summary.
    """
    info = dict(_core.system_info())
    info["features"] = {name: dict(entry) for name, entry in info["features"].items()}
    info["missing"] = list(info["missing"])
    return info
