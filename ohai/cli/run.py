"""`ohai run`: complete a prompt, streaming the answer."""
from __future__ import annotations

import argparse
import json

from .common import (
    CliError,
    add_model_arguments,
    add_sampling_arguments,
    open_model,
    read_stdin,
    sampling_options,
    stdin,
    utf8_text,
    write,
)

HELP = "generate a completion of PROMPT (read from stdin when piped), streaming it (default command)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="*", help="prompt text; words are joined with spaces")
    add_model_arguments(parser)
    add_sampling_arguments(parser)
    parser.add_argument("--chat", action="store_true", help="send the prompt as a user message through the chat template")
    parser.add_argument("--json", action="store_true", help="print one JSON object (text, usage, timings) instead of streaming")


def read_prompt(words: list[str]) -> str:
    if words:
        return utf8_text("the prompt", " ".join(words))
    if not stdin("no prompt given as an argument").isatty():
        return read_stdin("no prompt given as an argument")
    raise CliError("no prompt given (pass it as an argument or pipe it on stdin)")


def execute(args: argparse.Namespace) -> int:
    prompt = read_prompt(args.prompt)
    if not prompt.strip():
        raise CliError("the prompt is empty")
    options = sampling_options(args)
    with open_model(args) as model:
        if args.chat:
            prompt = model.apply_chat_template([{"role": "user", "content": prompt}])
        if args.json:
            # The engine's one JSON shape, the same as `ohai-cli --json` and the ai_engine plugin.
            print(model._generate_json(prompt, **options))
            return 0
        pieces = model.stream(prompt, **options)
        try:
            for piece in pieces:
                write(piece)
        finally:
            pieces.close()
        write("\n")
    return 0
