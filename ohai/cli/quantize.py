"""`ohai quantize`: write a GGUF at another type."""
from __future__ import annotations

import argparse
import os

from ..quantize import quantize as quantize_model
from ..quantize import quantize_types
from .common import ProgressBar

HELP = "quantize SRC into DST at TYPE (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K_M, F16, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="input GGUF")
    parser.add_argument("dst", help="output GGUF")
    parser.add_argument("type", help="target type: " + ", ".join(quantize_types()))
    parser.add_argument("-t", "--threads", type=int, default=0)


def execute(args: argparse.Namespace) -> int:
    bar = ProgressBar(f"quantizing to {args.type.upper()}")
    quantize_model(args.src, args.dst, args.type, threads=args.threads, progress=bar)
    size = os.path.getsize(args.dst)
    print(f"wrote {args.dst} ({size / 2**20:.2f} MiB, {args.type.upper()})")
    return 0
