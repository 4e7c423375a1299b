"""`ohai aie`: call the ai_engine plugin libraries the way ai_engine's server does (developer tool).

    ohai aie info
    ohai aie call generate '{"prompt": "Hello", "max_tokens": 16}'
    ohai aie call --sync generate '{"prompt": "Hello"}'
    ohai aie call --follow stream_start '{"prompt": "Tell me a story"}'
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from .common import CliError, display, error_line, utf8_text, write

if TYPE_CHECKING:
    from ..aie import PluginHost

HELP = "call ai_engine's plugin (libohai_llm.so) as ai_engine's server does: `aie call OP [JSON]`, `aie info`"

# The plugin loads models only from this directory (set before the library is loaded).
MODEL_DIR_ENV = "OHAI_AIE_MODEL_DIR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="aie_action", metavar="ACTION", required=True)

    call = actions.add_parser(
        "call", help="prepare a transaction for a model, send one operation, print the reply, release",
        description="Loads the plugin, prepares a transaction for the model, sends {\"op\": OP, **JSON} "
                    "and prints the reply as JSON.")
    call.add_argument("--sync", action="store_true", help="use the synchronous plugin (libohai_llm_sync.so)")
    call.add_argument("-m", "--model", help="model file, or a file name inside the model directory "
                                            "(default: the default model)")
    call.add_argument("--model-dir", help="the plugin's model directory (default: the model file's directory)")
    call.add_argument("--library", help="plugin library to load instead of the installed one")
    call.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each reply (default 300)")
    call.add_argument("--follow", action="store_true",
                      help="with stream_start: call stream_next and print the text as it arrives, until done")
    call.add_argument("op", metavar="OP", help="the operation (generate, tokenize, detokenize, embed, info, stream_start, stream_next, stream_cancel)")
    call.add_argument("json", metavar="JSON", nargs="?", default="{}",
                      help="a JSON object with the operation's fields (default {})")
    call.set_defaults(aie_handler=_call)

    info = actions.add_parser("info", help="the plugin libraries: path, name, version, infer mode",
                              description="Loads each installed plugin library and shows what it reports.")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(aie_handler=_info)


def execute(args: argparse.Namespace) -> int:
    return int(args.aie_handler(args) or 0)


# ---- ohai aie call ---------------------------------------------------------------------------


def _call(args: argparse.Namespace) -> int:
    from .. import aie

    op = utf8_text("OP", args.op)
    fields = _json_object_argument(args.json)
    if "op" in fields:
        raise CliError("JSON must not contain \"op\": the operation is the OP argument")
    if args.follow and op != "stream_start":
        raise CliError("--follow goes with the stream_start operation")
    if not args.timeout > 0:
        raise CliError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    library = args.library if args.library else aie.plugin_library("sync" if args.sync else "async")
    model_dir, model_name = _model_location(args.model, args.model_dir)
    os.environ[MODEL_DIR_ENV] = model_dir

    with aie.PluginHost(library) as host:
        transaction, _ = host.prepare({"model": model_name})
        try:
            reply = host.process(transaction, {"op": op, **fields}, timeout=args.timeout)
            if args.follow:
                _follow(host, transaction, reply, args.timeout)
            else:
                _print_json(reply)
        except BaseException:
            _release_quietly(host, transaction)  # the call's error is the one to report
            raise
        host.release(transaction)
    return 0


def _json_object_argument(text: str) -> Dict[str, Any]:
    text = utf8_text("JSON", text)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"JSON is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError(f"JSON must be a JSON object, not {type(value).__name__}")
    return value


def _model_location(model: Optional[str], model_dir: Optional[str]) -> Tuple[str, str]:
    """(the plugin's model directory, the model's name inside it)."""
    from ..default_model import default_model_path

    if model_dir is not None and not os.path.isdir(model_dir):
        raise CliError(f"--model-dir {display(model_dir)} is not a directory")
    if model is None:
        model = default_model_path()
    if os.sep in model or os.path.isfile(model):
        path = os.path.abspath(model)
        directory = os.path.abspath(model_dir) if model_dir is not None else os.path.dirname(path)
        name = os.path.relpath(path, directory)
        if name.startswith(os.pardir + os.sep) or name == os.pardir:
            raise CliError(f"the model {display(model)} is not inside --model-dir {display(model_dir or '')}")
        return directory, utf8_text("--model", name)
    # A bare name: a file inside the model directory (default: the default model's directory).
    directory = os.path.abspath(model_dir) if model_dir is not None else os.path.dirname(default_model_path())
    return directory, utf8_text("--model", model)


def _follow(host: PluginHost, transaction: int, reply: Dict[str, Any], timeout: float) -> None:
    """Prints the stream's text pieces as they arrive: stream_next (a long poll; the plugin's
    default wait) until a reply says the stream is done."""
    stream = reply.get("stream")
    if stream is None:
        raise CliError("the stream_start reply names no stream")
    wrote_text = _write_piece(reply)
    while not _stream_done(reply):
        reply = host.process(transaction, {"op": "stream_next", "stream": stream}, timeout=timeout)
        wrote_text = _write_piece(reply) or wrote_text
    if wrote_text:
        write("\n")


def _write_piece(reply: Dict[str, Any]) -> bool:
    piece = reply.get("text")
    if not isinstance(piece, str) or not piece:
        return False
    _write_utf8(piece)
    return True


def _stream_done(reply: Dict[str, Any]) -> bool:
    return reply.get("done") is True


def _release_quietly(host: PluginHost, transaction: int) -> None:
    try:
        host.release(transaction)
    except Exception:  # noqa: BLE001 - reported instead: the error that ended the call
        pass


# ---- ohai aie info ---------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    from .. import aie

    report: Dict[str, Dict[str, Any]] = {}
    for mode in ("async", "sync"):
        entry: Dict[str, Any] = {}
        try:
            entry["path"] = aie.plugin_library(mode)
            with aie.PluginHost(entry["path"]) as host:
                entry.update(name=host.name, version=host.version, infer_mode=host.infer_mode)
        except (OSError, aie.PluginCallError) as exc:
            entry["error"] = str(exc)
        report[mode] = entry
    if args.json:
        _print_json(report)
    else:
        rows = []
        for mode, entry in report.items():
            rows.append((f"{mode} plugin", display(entry.get("path", "not installed"))))
            if "error" in entry:
                rows.append(("  error", entry["error"]))
            else:
                rows += [("  name", entry["name"]), ("  version", str(entry["version"])),
                         ("  infer mode", entry["infer_mode"])]
        width = max(len(key) for key, _ in rows)
        _write_utf8("".join(f"{key:<{width}}  {value}\n" for key, value in rows))
    failures = [f"{mode} plugin: {entry['error']}" for mode, entry in report.items() if "error" in entry]
    for failure in failures:
        error_line(f"ohai: error: {failure}")
    return 1 if failures else 0


# ---- output ------------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    try:
        _write_utf8(json.dumps(value, indent=2, ensure_ascii=False) + "\n", strict=True)
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800 escape: not UTF-8, so escape it
        _write_utf8(json.dumps(value, indent=2, ensure_ascii=True) + "\n")


def _write_utf8(text: str, *, strict: bool = False) -> None:
    """`text` on stdout as UTF-8 whatever the locale says (the plugin speaks UTF-8)."""
    data = text.encode("utf-8", "strict" if strict else "replace")
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # replaced by a text-only stream (a test)
        write(data.decode("utf-8"))
        return
    sys.stdout.flush()
    buffer.write(data)
    buffer.flush()
