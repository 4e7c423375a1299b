"""`ohai quantize`: write a GGUF at another type."""
from __future__ import annotations

import argparse
import os
import sys

from ..quantize import quantize as quantize_model
from ..quantize import quantize_types
from .common import ProgressBar

HELP = "quantize SRC into DST at TYPE (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K_M, F16, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="input GGUF")
    parser.add_argument("dst", help="output GGUF (an existing file is replaced only after confirmation or with --force)")
    parser.add_argument("type", help="target type: " + ", ".join(quantize_types()))
    parser.add_argument("-t", "--threads", type=int, default=0)
    parser.add_argument("-f", "--force", action="store_true", help="replace DST if it exists, without asking")


def _confirm_overwrite(dst: str) -> bool:
    """Asks on the terminal; without one (a script, a pipe) the answer is no."""
    if not (sys.stdin is not None and sys.stdin.isatty() and sys.stderr is not None):
        return False
    sys.stderr.write(f"ohai: {dst} exists; replace it? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def execute(args: argparse.Namespace) -> int:
    overwrite = bool(args.force)
    if not overwrite and os.path.lexists(args.dst) and os.path.isfile(args.dst):
        if not _confirm_overwrite(args.dst):
            raise ValueError(f"{args.dst} already exists (use --force to replace it)")
        overwrite = True
    bar = ProgressBar(f"quantizing to {args.type.upper()}")
    quantize_model(args.src, args.dst, args.type, threads=args.threads, progress=bar, overwrite=overwrite)
    size = os.path.getsize(args.dst)
    print(f"wrote {args.dst} ({size / 2**20:.2f} MiB, {args.type.upper()})")
    return 0
