"""Options and helpers shared by the CLI commands."""
from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any

from ..defaults import SAMPLING
from ..model import Model


class CliError(Exception):
    """A problem with what the user gave the command line: printed as one line, exit 1."""


def utf8_text(what: str, text: str) -> str:
    """`text` if it is valid UTF-8. Python hands over argv and the environment with bytes that
    do not decode as surrogate escapes; such text must be refused, not sent to the model."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CliError(f"{what} is not valid UTF-8") from None
    return text


def _decode(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{what} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    # What text-mode reading did: universal newlines.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def stdin(purpose: str) -> IO[str]:
    """sys.stdin, which is None when the process started with file descriptor 0 closed."""
    if sys.stdin is None:
        raise CliError(f"standard input is closed ({purpose})")
    return sys.stdin


def read_stdin(purpose: str) -> str:
    """All of standard input, decoded strictly as UTF-8 whatever the locale says."""
    stream = stdin(purpose)
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # replaced by a text-only stream (an embedding program, a test)
        return utf8_text("standard input", stream.read())
    return _decode(buffer.read(), "standard input")


def read_stdin_line(stream: IO[str], line_number: int) -> str:
    """One line of `stream` ("" at the end), decoded strictly as UTF-8."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        return utf8_text(f"line {line_number} of standard input", stream.readline())
    return _decode(buffer.readline(), f"line {line_number} of standard input")


def display(text: str) -> str:
    """`text` made printable: a file name that is not UTF-8 (surrogate-escaped) shows U+FFFD
    where its odd bytes are, instead of failing the write to a UTF-8 stdout."""
    try:
        return os.fsencode(text).decode("utf-8", "replace")
    except UnicodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_line(message: str) -> None:
    """`message` as one line on stderr, if there is a stderr to write to."""
    line = " ".join(str(message).splitlines())
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # nowhere left to report to; the exit code still says it failed


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct Q4_1)")
    parser.add_argument("-t", "--threads", type=int, default=0, help="CPU threads (default: all)")
    parser.add_argument("-c", "--ctx", type=int, default=0, help="context length (default: min(training, 4096))")
    parser.add_argument("--device", default="auto",
                        help='where matrix multiplications run: auto (an NNRt accelerator if there is one), cpu, '
                             'nnrt, nnrt:<name> (default auto; see `ohai devices`)')
    parser.add_argument("--kv-type", default="f16", choices=["f16", "q8_0", "q4_0"],
                        help="KV cache type: q8_0 / q4_0 take about 1/2 / 1/4 of f16's memory (default f16)")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--max-tokens", type=int, default=SAMPLING.max_tokens,
                        help=f"tokens to generate (default {SAMPLING.max_tokens})")
    d = SAMPLING
    parser.add_argument("--temp", type=float, default=d.temperature,
                        help=f"temperature, 0 = greedy (default {d.temperature})")
    parser.add_argument("--top-k", type=int, default=d.top_k, help=f"default {d.top_k}")
    parser.add_argument("--top-p", type=float, default=d.top_p, help=f"default {d.top_p}")
    parser.add_argument("--min-p", type=float, default=d.min_p, help=f"default {d.min_p}")
    parser.add_argument("--repeat-penalty", type=float, default=d.repeat_penalty, help=f"default {d.repeat_penalty}")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    stop = [utf8_text("--stop", s) for s in args.stop]
    return {
        "max_tokens": args.max_tokens, "temperature": args.temp, "top_k": args.top_k, "top_p": args.top_p,
        "min_p": args.min_p, "repeat_penalty": args.repeat_penalty, "seed": args.seed, "stop": stop,
    }


def open_model(args: argparse.Namespace, *, vocab_only: bool = False) -> Model:
    if vocab_only:
        return Model(args.model, vocab_only=True)
    return Model(args.model, n_ctx=args.ctx, threads=args.threads, kv_type=args.kv_type, device=args.device)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class ProgressBar:
    """A one-line progress bar on stderr (only when stderr is a terminal, unless forced)."""

    def __init__(self, label: str, *, force: bool = False, width: int = 30) -> None:
        self.label, self.width = label, width
        self.enabled = force or (sys.stderr is not None and sys.stderr.isatty())

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0 or sys.stderr is None:
            return
        filled = int(self.width * done / total)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()
