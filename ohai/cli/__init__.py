"""The `ohai` command line: run (the default), chat, info, bench, quantize."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._core import OhaiError
from . import bench, chat, info, quantize, run

COMMANDS = {"run": run, "chat": chat, "info": info, "bench": bench, "quantize": quantize}
DEFAULT_COMMAND = "run"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not a usage dump
        raise SystemExit(f"{self.prog}: error: {message}")


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
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `ohai "prompt"` and `echo prompt | ohai` mean `ohai run ...`.
    if not args_list or (args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, DEFAULT_COMMAND)
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (OhaiError, OSError, ValueError, OverflowError) as exc:
        print(f"ohai: error: {exc}", file=sys.stderr)
        return 1
