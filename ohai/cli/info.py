"""`ohai info`: what a model file holds."""
from __future__ import annotations

import argparse
import json

from ..model import Model
from ..system import system_info
from .common import display

HELP = "show a model's architecture, size, context, vocabulary, type and chat template, and the CPU features in use"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF model file (default: the default model)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def execute(args: argparse.Namespace) -> int:
    with Model(args.model) as model:
        info = model.info
    if args.json:
        print(json.dumps({**info.to_dict(), "system": system_info()}, indent=2))
        return 0
    rows = [
        ("path", display(info.path)), ("architecture", info.arch), ("description", info.description),
        ("parameters", f"{info.n_params:,}"), ("file size", f"{info.size_bytes:,} bytes"),
        ("file type", info.file_type), ("training context", str(info.n_ctx_train)),
        ("vocabulary", str(info.n_vocab)), ("embedding size", str(info.n_embd)), ("layers", str(info.n_layer)),
        ("chat template", "yes" if info.chat_template else "no (ChatML is used)"),
        *_system_rows(),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _system_rows() -> list[tuple[str, str]]:
    system = system_info()
    used = [name for name, f in system["features"].items() if f["used"]]
    unused = [name for name, f in system["features"].items() if f["supported"] and not f["built"]]
    target = system["cpu_target"] + (", AMX enabled" if system["amx_enabled"] else "")
    return [
        ("cpu", system["cpu_model"] or "unknown"),
        ("build target", target),
        ("cpu features used", " ".join(used) or "none beyond the baseline"),
        ("cpu features unused", " ".join(unused) or "none"),
    ]
