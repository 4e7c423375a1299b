"""Options and helpers shared by the CLI commands."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..model import Model


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct Q4_1)")
    parser.add_argument("-t", "--threads", type=int, default=0, help="CPU threads (default: all)")
    parser.add_argument("-c", "--ctx", type=int, default=0, help="context length (default: min(training, 4096))")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--max-tokens", type=int, default=256, help="tokens to generate (default 256)")
    parser.add_argument("--temp", type=float, default=0.8, help="temperature, 0 = greedy (default 0.8)")
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--min-p", type=float, default=0.05)
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_tokens": args.max_tokens, "temperature": args.temp, "top_k": args.top_k, "top_p": args.top_p,
        "min_p": args.min_p, "repeat_penalty": args.repeat_penalty, "seed": args.seed, "stop": args.stop,
    }


def open_model(args: argparse.Namespace, *, vocab_only: bool = False) -> Model:
    if vocab_only:
        return Model(args.model, vocab_only=True)
    return Model(args.model, n_ctx=args.ctx, threads=args.threads)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class ProgressBar:
    """A one-line progress bar on stderr (only when stderr is a terminal, unless forced)."""

    def __init__(self, label: str, *, force: bool = False, width: int = 30) -> None:
        self.label, self.width = label, width
        self.enabled = force or sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(self.width * done / total)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()
