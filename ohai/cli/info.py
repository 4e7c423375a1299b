"""`ohai info`: what a model file holds."""
from __future__ import annotations

import argparse
import json

from ..model import Model

HELP = "show a model's architecture, size, context, vocabulary, type and chat template"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF model file (default: the default model)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def execute(args: argparse.Namespace) -> int:
    with Model(args.model) as model:
        info = model.info
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    rows = [
        ("path", info.path), ("architecture", info.arch), ("description", info.description),
        ("parameters", f"{info.n_params:,}"), ("file size", f"{info.size_bytes:,} bytes"),
        ("file type", info.file_type), ("training context", str(info.n_ctx_train)),
        ("vocabulary", str(info.n_vocab)), ("embedding size", str(info.n_embd)), ("layers", str(info.n_layer)),
        ("chat template", "yes" if info.chat_template else "no (ChatML is used)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
