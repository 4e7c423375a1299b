"""The `ohai` command line: run (the default), chat, info, bench, quantize, serve, aie, devices."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from .._core import OhaiError
from . import aie, bench, chat, devices, info, quantize, run, serve
from .common import CliError, error_line

COMMANDS = {
    "run": run, "chat": chat, "info": info, "bench": bench, "quantize": quantize, "serve": serve, "aie": aie,
    "devices": devices,
}
DEFAULT_COMMAND = "run"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not a usage dump
        error_line(f"{self.prog}: error: {message}")
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ohai", description="LLM inference on OpenHarmony devices and hosts.")
    parser.add_argument("--version", action="version", version=f"ohai {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(handler=module.execute)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; every failure is one line on stderr and a non-zero exit code."""
    _reserve_standard_fds()
    try:
        if sys.stdout is None:  # started with `>&-`: every command writes its result there
            error_line("ohai: error: standard output is closed")
            return 1
        args_list = list(sys.argv[1:] if argv is None else argv)
        # `ohai "prompt"` and `echo prompt | ohai` mean `ohai run ...`.
        if not args_list or (args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help", "--version")):
            args_list.insert(0, DEFAULT_COMMAND)
        parser = build_parser()
        args = parser.parse_args(args_list)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        error_line("")
        return 130
    except BrokenPipeError:
        _silence_stdout()  # the reader left (`ohai ... | head`): not an error
        return 0
    except (CliError, OhaiError, OSError, ValueError, OverflowError) as exc:
        if isinstance(exc, OSError):
            _silence_stdout()  # stdout may be what failed (a full disk)
        error_line(f"ohai: error: {exc}")
        return 1
    except Exception as exc:  # a bug in ohai: still one line, unless asked for the traceback
        if os.environ.get("OHAI_DEBUG") == "1" and sys.stderr is not None:
            traceback.print_exc()
        error_line(f"ohai: internal error: {type(exc).__name__}: {exc}")
        return 1


def _reserve_standard_fds() -> None:
    """Opens /dev/null on any of fds 0, 1, 2 the process started without, so that no model or
    output file opened later gets one of those numbers: native code (llama.cpp, ggml) writes
    to fd 2 and would write into that file."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself
            except OSError:
                return


def _silence_stdout() -> None:
    """Points fd 1 at /dev/null: the interpreter flushes stdout once more at exit, and a write
    to a vanished pipe or a full disk would then print a multi-line report."""
    stdout = sys.stdout
    if stdout is None:
        return
    try:
        stdout.flush()  # what was written so far still reaches a working stdout
        return
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's StringIO): nothing to flush at exit
