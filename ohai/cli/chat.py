"""`ohai chat`: an interactive conversation that keeps its history."""
from __future__ import annotations

import argparse

from .._core import ContextOverflowError
from ..model import Model
from .common import (
    add_model_arguments,
    add_sampling_arguments,
    error_line,
    open_model,
    read_stdin_line,
    sampling_options,
    stdin,
    utf8_text,
    write,
)

HELP = "chat with the model interactively (empty line or Ctrl-D ends; /reset clears the history)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_sampling_arguments(parser)
    parser.add_argument("-s", "--system", help="system prompt")


def forget_old_turns(model: Model, history: list[dict[str, str]], *, keep: int, reserve: int) -> None:
    """Drop the oldest messages after the first `keep` (the system prompt) until the
    conversation leaves room for an answer of `reserve` tokens."""
    room = model.n_ctx - min(max(reserve, 1), model.n_ctx // 2)
    while len(history) > keep + 1:
        prompt = model.apply_chat_template(history)
        if len(model.tokenize(prompt, add_special=True, parse_special=True)) <= room:
            return
        del history[keep]
        # Keep the turns aligned: the conversation resumes with a user message.
        while len(history) > keep + 1 and history[keep]["role"] != "user":
            del history[keep]


def execute(args: argparse.Namespace) -> int:
    # Everything the user typed is checked before the model is loaded.
    options = sampling_options(args)
    system = utf8_text("--system", args.system) if args.system else None
    conversation = stdin("chat reads the conversation from it")
    interactive = conversation.isatty()
    failed = False  # a turn that failed is skipped, but the exit code must still say so
    with open_model(args) as model:
        history: list[dict[str, str]] = []
        if system:
            history.append({"role": "system", "content": system})
        base = list(history)
        line_number = 0
        while True:
            if interactive:
                write("> ")
            line_number += 1
            line = read_stdin_line(conversation, line_number)
            if not line or not line.strip():
                break
            message = line.strip()
            if message == "/reset":
                history = list(base)
                continue
            history.append({"role": "user", "content": message})
            forget_old_turns(model, history, keep=len(base), reserve=args.max_tokens)
            answer: list[str] = []
            try:
                pieces = model.chat(history, stream=True, **options)
            except ContextOverflowError as exc:
                error_line(f"ohai: error: {exc}")
                failed = True
                history.pop()
                continue
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
    return 1 if failed else 0
