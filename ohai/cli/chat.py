"""`ohai chat`: an interactive conversation that keeps its history."""
from __future__ import annotations

import argparse
import sys

from .common import add_model_arguments, add_sampling_arguments, open_model, sampling_options, write

HELP = "chat with the model interactively (empty line or Ctrl-D ends; /reset clears the history)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_sampling_arguments(parser)
    parser.add_argument("-s", "--system", help="system prompt")


def execute(args: argparse.Namespace) -> int:
    options = sampling_options(args)
    interactive = sys.stdin.isatty()
    with open_model(args) as model:
        history: list[dict[str, str]] = []
        if args.system:
            history.append({"role": "system", "content": args.system})
        base = list(history)
        while True:
            if interactive:
                write("> ")
            line = sys.stdin.readline()
            if not line or not line.strip():
                break
            message = line.strip()
            if message == "/reset":
                history = list(base)
                continue
            history.append({"role": "user", "content": message})
            answer: list[str] = []
            pieces = model.chat(history, stream=True, **options)
            try:
                for piece in pieces:
                    answer.append(piece)
                    write(piece)
            except KeyboardInterrupt:
                # Ctrl-C stops this answer, not the session.
                write("\n")
            finally:
                pieces.close()
            write("\n")
            history.append({"role": "assistant", "content": "".join(answer)})
    return 0
