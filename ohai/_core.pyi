"""Type stubs for the native module ohai._core (see bindings/)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

class OhaiError(Exception): ...
class ModelLoadError(OhaiError): ...
class OverloadedError(OhaiError): ...
class InvalidRequestError(OhaiError, ValueError): ...
class ContextOverflowError(InvalidRequestError): ...

class LogLevel(Enum):
    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3
    NONE = 4

def set_log_handler(handler: Callable[[LogLevel, str], None] | None, level: LogLevel = ...) -> None: ...

class ModelInfo:
    path: str
    arch: str
    description: str
    n_params: int
    size_bytes: int
    n_ctx_train: int
    n_vocab: int
    n_embd: int
    n_layer: int
    file_type: str
    chat_template: str

class Model:
    # bytes reach the file system unchanged (ohai.Model passes os.fsencode(path)).
    def __init__(self, path: str | bytes, vocab_only: bool = False, use_mmap: bool = True) -> None: ...
    @property
    def info(self) -> ModelInfo: ...
    @property
    def vocab_only(self) -> bool: ...
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]: ...
    def detokenize(self, tokens: list[int], render_special: bool = False) -> str: ...
    def token_to_piece(self, token: int, render_special: bool = False) -> bytes: ...
    def is_end_of_generation(self, token: int) -> bool: ...

class SamplingParams:
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repeat_penalty: float
    repeat_last_n: int
    seed: int | None

class GenerateRequest:
    prompt: str
    prompt_tokens: list[int]
    add_special: bool
    parse_special: bool
    max_tokens: int
    stop: list[str]
    sampling: SamplingParams

class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int

class Timings:
    prompt_ms: float
    decode_ms: float
    prompt_per_second: float
    decode_per_second: float

class Completion:
    text: str
    tokens: list[int]
    finish_reason: str
    usage: Usage
    timings: Timings

class Generation(Iterator[str]):
    def __next__(self) -> str: ...
    def result(self) -> Completion: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

class Engine:
    def __init__(self, model: Model, n_ctx: int = 0, threads: int = 0, parallel: int = 0, kv_type: str = "f16",
                 max_queued: int = 64, n_batch: int = 512) -> None: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def parallel(self) -> int: ...
    @property
    def kv_type(self) -> str: ...
    def stats(self) -> dict[str, int]: ...
    def submit(self, request: GenerateRequest) -> Generation: ...
    def embed(self, texts: list[str], normalize: bool = True) -> npt.NDArray[np.float32]: ...
    def logits(self, tokens: list[int], prompt_tokens: int) -> npt.NDArray[np.float32]: ...
    def close(self) -> None: ...

def apply_chat_template(model: Model, messages: list[tuple[str, str]], add_assistant: bool = True) -> str: ...
def quantize_types() -> list[str]: ...
def quantize(src: str | bytes, dst: str | bytes, type: str, threads: int = 0,
             progress: Callable[[int, int], None] | None = None, overwrite: bool = False) -> None: ...
def system_info() -> dict[str, Any]: ...

class BenchResult:
    test: str
    n_prompt: int
    n_gen: int
    n_threads: int
    samples_ts: list[float]
    avg_ts: float
    stddev_ts: float

def bench(model: Model, n_prompt: int = 512, n_gen: int = 128, repetitions: int = 3,
          threads: int = 0) -> list[BenchResult]: ...

# Interpreter exit (ohai's atexit handler) and the threads still inside native calls at that time.
def _begin_exit() -> None: ...
def _park_if_exiting() -> None: ...
def _wait_for_native_calls(timeout: float) -> None: ...
