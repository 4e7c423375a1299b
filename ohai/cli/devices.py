"""`ohai devices`: the CPU and the NNRt accelerators ohai can compute on."""
from __future__ import annotations

import argparse
import json

from ..devices import devices

HELP = "list the devices ohai can compute on: the CPU and NNRt accelerators (OpenHarmony's Neural Network Runtime)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def execute(args: argparse.Namespace) -> int:
    info = devices()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for d in info["devices"]:
        ops = "; ".join(d["supported_ops"])
        print(f"{d['name']}  ({d['kind']}, {d['type']})  {d['description']}")
        print(f"    runs: {ops}")
    if info["nnrt_status"]:
        print(f"no NNRt accelerator: {info['nnrt_status']}")
    return 0
