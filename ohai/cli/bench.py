"""`ohai bench`: prompt and generation throughput, in llama-bench's table shape."""
from __future__ import annotations

import argparse
import json

from ..model import Model

HELP = "measure prompt (pp) and generation (tg) tokens/s like llama-bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF model file (default: the default model)")
    parser.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens (0 = skip pp)")
    parser.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens (0 = skip tg)")
    parser.add_argument("-r", "--repetitions", type=int, default=3)
    parser.add_argument("-t", "--threads", type=int, default=0, help="CPU threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")


def execute(args: argparse.Namespace) -> int:
    with Model(args.model) as model:
        records = model.bench(args.n_prompt, args.n_gen, args.repetitions, args.threads)
        info = model.info
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    size = f"{info.size_bytes / 2**20:.2f} MiB"
    params = f"{info.n_params / 1e6:.2f} M"
    header = ["model", "size", "params", "backend", "threads", "test", "t/s"]
    rows = [[info.description, size, params, "CPU", str(r["n_threads"]), r["test"],
             f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}"] for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return 0
