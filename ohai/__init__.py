"""ohai: large-language-model inference for OpenHarmony devices and their developers' hosts.

One native engine (llama.cpp inside, statically linked) driven from Python::

    import ohai
    with ohai.Model() as m:                  # the default model, fetched on first use
        print(m.generate("Hello", max_tokens=16).text)
"""
from __future__ import annotations

from ._core import ContextOverflowError, InvalidRequestError, ModelLoadError, OhaiError, OverloadedError
from .default_model import default_model_path
from .devices import devices, nnrt_stats, set_nnrt_options
from .log import set_log_level
from .model import CompletionStream, Model
from .quantize import quantize, quantize_types
from .system import system_info
from .types import Completion, ModelInfo, Timings, Usage

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # `ohai.aie` (the ai_engine plugin host) has an extension of its own: imported on first use.
    if name == "aie":
        # import_module, not `from . import aie`: that asks this very __getattr__ again.
        import importlib

        return importlib.import_module(".aie", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Completion",
    "CompletionStream",
    "ContextOverflowError",
    "InvalidRequestError",
    "Model",
    "ModelInfo",
    "ModelLoadError",
    "OhaiError",
    "OverloadedError",
    "Timings",
    "Usage",
    "default_model_path",
    "devices",
    "nnrt_stats",
    "quantize",
    "quantize_types",
    "set_log_level",
    "set_nnrt_options",
    "system_info",
]
