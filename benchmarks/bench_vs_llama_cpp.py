#!/usr/bin/env python3
"""Measure ohai against llama.cpp's own llama-bench on the same model.

One run:
  1. builds `llama-bench` from the pinned llama.cpp tree (third_party/llama.cpp)
     with ohai's CPU flags into the kept, incremental build dir build/llama-tools
     (see llama_tools.py);
  2. runs `llama-bench` and `python -m ohai bench` with the same -p/-n/-r/-t,
     alternating in ABBA order (see `round_order`) so slow drift of the machine
     (thermals, background load) hits both sides alike;
  3. compares decode throughput of Python streaming (`ohai.Model.stream`, through
     `Model.chat(stream=True)`) with the native `ohai-cli --chat`;
  4. prints a table of ratios (or JSON with --json).

This is a measurement, not a test: it never asserts timings and exits 0 unless
something failed to run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # llama_tools, also under `python -P`
import llama_tools  # noqa: E402

ROOT = llama_tools.ROOT
LLAMA_TREE = llama_tools.LLAMA_TREE
BUILD_DIR = llama_tools.DEFAULT_BUILD_DIR  # shared with bench_serving.py (llama-server)

TARGET_PP_TG = 0.97   # ohai bench / llama-bench
TARGET_STREAM = 0.95  # Python stream / ohai-cli
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper."
TAIL_LINES = 20
MIN_STREAM_TOKENS = 2  # a decode rate needs at least one decode step
STREAM_HINT = "cannot time decoding: use a --prompt that makes the model write (and no --raw)"


# --------------------------------------------------------------------------- helpers

def die(msg: str) -> NoReturn:
    sys.exit(f"bench_vs_llama_cpp: error: {msg}")


def log(msg: str) -> None:
    # Progress goes to stderr so that --json keeps stdout machine-readable.
    print(f"bench_vs_llama_cpp: {msg}", file=sys.stderr, flush=True)


def tail(text: str, n: int = TAIL_LINES) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join("    " + line for line in lines[-n:])


def run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> str:
    """Run a command, return its stdout; exit with its stderr tail on failure."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        die(f"{what}: executable not found: {cmd[0]}")
    if proc.returncode != 0:
        out = proc.stderr.strip() or proc.stdout.strip() or "(no output)"
        die(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{tail(out)}")
    return proc.stdout


def parse_json_output(stdout: str, what: str) -> Any:
    try:
        return llama_tools.last_json_document(stdout)
    except ValueError:
        die(f"{what}: no JSON found in its output\n{tail(stdout.strip() or '(empty)')}")


# --------------------------------------------------------------------------- llama-bench build

def ensure_llama_tree() -> None:
    try:
        llama_tools.ensure_llama_tree(log)
    except llama_tools.LlamaToolsError as e:
        die(str(e))


def pinned_info() -> tuple[str, str]:
    """(whole OHAI_PINNED line, llama.cpp build id)."""
    return llama_tools.pinned_info()


def build_llama_bench(build_dir: Path, jobs: int | None) -> Path:
    # llama_tools configures the shared tools build dir with ohai's CPU flags
    # (native, AMX compiled out unless OHAI_AMX=ON) and builds incrementally.
    try:
        return llama_tools.build_tool("llama-bench", build_dir, jobs, log)
    except llama_tools.LlamaToolsError as e:
        die(str(e))


# --------------------------------------------------------------------------- model / ohai

def import_ohai() -> Any:
    try:
        import ohai  # optional: --baseline-only works without it
    except ImportError as e:
        die(f"cannot import ohai with {sys.executable} ({e}); install the package "
            "or pass --baseline-only --model PATH")
    return ohai


def resolve_model(arg: Path | None) -> Path:
    if arg is not None:
        path = arg.expanduser().resolve()
    else:
        log("resolving the default model (downloaded on first use)")
        try:
            path = Path(import_ohai().default_model_path()).resolve()
        except Exception as e:  # any failure here is a one-line error
            die(f"ohai.default_model_path() failed: {e}")
    if not path.is_file():
        die(f"model not found: {path}")
    return path


def find_ohai_cli() -> Path:
    # Prefer the executable installed next to this interpreter (same venv).
    beside = Path(sys.executable).parent / "ohai-cli"
    if beside.is_file():
        return beside
    found = shutil.which("ohai-cli")
    if found is None:
        die(f"ohai-cli not found (looked in {beside.parent} and on PATH)")
    return Path(found)


# --------------------------------------------------------------------------- pp / tg runs

@dataclass
class Samples:
    """Throughput samples (tokens/s) of one test, pooled over all rounds."""
    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def stddev(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


def test_name(rec: dict[str, Any]) -> str:
    n_prompt, n_gen = int(rec.get("n_prompt", 0)), int(rec.get("n_gen", 0))
    if n_prompt > 0 and n_gen == 0:
        return f"pp{n_prompt}"
    if n_gen > 0 and n_prompt == 0:
        return f"tg{n_gen}"
    return str(rec.get("test") or f"pp{n_prompt}+tg{n_gen}")


def add_records(records: Any, into: dict[str, Samples], what: str) -> None:
    if not isinstance(records, list):
        die(f"{what}: expected a JSON list of records, got {type(records).__name__}")
    for rec in records:
        try:
            samples = rec.get("samples_ts") or [rec["avg_ts"]]
            into.setdefault(test_name(rec), Samples()).values.extend(float(v) for v in samples)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            die(f"{what}: malformed record ({e!r}): {json.dumps(rec)[:200]}")


def split_reps(reps: int, rounds: int) -> list[int]:
    """Spread `reps` repetitions over at most `rounds` invocations, each >= 1."""
    rounds = max(1, min(rounds, reps))
    base, extra = divmod(reps, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


def round_order(i: int) -> tuple[str, str]:
    # ABBA: llama-bench first in even rounds, ohai first in odd ones, so a
    # linear drift over the run costs both sides the same.
    return ("llama-bench", "ohai") if i % 2 == 0 else ("ohai", "llama-bench")


def llama_bench_cmd(binary: Path, model: Path, a: argparse.Namespace, reps: int) -> list[str]:
    return [str(binary), "-m", str(model), "-p", str(a.n_prompt), "-n", str(a.n_gen),
            "-r", str(reps), "-t", str(a.threads), "-o", "json", *shlex.split(a.llama_bench_args)]


def ohai_bench_cmd(model: Path, a: argparse.Namespace, reps: int) -> list[str]:
    # `python -m ohai` guarantees the ohai of this very environment; -P keeps the
    # current directory off sys.path, so the repo's source tree `ohai/` (no built
    # extension in it) cannot shadow the installed package when run from the root.
    return [sys.executable, "-P", "-m", "ohai", "bench", "-m", str(model), "-p", str(a.n_prompt),
            "-n", str(a.n_gen), "-r", str(reps), "-t", str(a.threads), "--json"]


def run_pp_tg(binary: Path, model: Path, a: argparse.Namespace, with_ohai: bool
              ) -> tuple[dict[str, Samples], dict[str, Samples], list[str], list[dict[str, Any]]]:
    lb: dict[str, Samples] = {}
    oh: dict[str, Samples] = {}
    order: list[str] = []
    lb_raw: list[dict[str, Any]] = []
    rounds = split_reps(a.repetitions, a.rounds)
    for i, reps in enumerate(rounds):
        for side in round_order(i):
            if side == "ohai" and not with_ohai:
                continue
            log(f"round {i + 1}/{len(rounds)}: {side} -r {reps}")
            order.append(f"{side} r={reps}")
            if side == "llama-bench":
                out = run(llama_bench_cmd(binary, model, a, reps), "llama-bench")
                recs = parse_json_output(out, "llama-bench")
                add_records(recs, lb, "llama-bench")
                lb_raw += recs
            else:
                out = run(ohai_bench_cmd(model, a, reps), "ohai bench")
                add_records(parse_json_output(out, "ohai bench"), oh, "ohai bench")
    return lb, oh, order, lb_raw


# --------------------------------------------------------------------------- stream vs ohai-cli

def cli_decode_rate(cli: Path, model: Path, a: argparse.Namespace) -> tuple[float, int]:
    """(decode tokens/s reported by ohai-cli, completion tokens)."""
    cmd = [str(cli), "-m", str(model), "-p", a.prompt, "-n", str(a.n_gen), "--temp", "0",
           "-t", str(a.threads), "--json", *([] if a.raw else ["--chat"])]
    obj = parse_json_output(run(cmd, "ohai-cli"), "ohai-cli")
    try:
        rate, tokens = float(obj["timings"]["decode_per_second"]), int(obj["usage"]["completion_tokens"])
    except (KeyError, TypeError, ValueError) as e:
        die(f"ohai-cli --json: missing field {e!r} in {json.dumps(obj)[:200]}")
    if tokens < MIN_STREAM_TOKENS:
        die(f"ohai-cli generated {tokens} token(s); {STREAM_HINT}")
    return rate, tokens


def start_stream(model_obj: Any, a: argparse.Namespace) -> Any:
    # Same prompt text as `ohai-cli [--chat]`: the chat template wraps it as one user
    # message (an instruct model given the bare request often answers with EOS at once).
    opts: dict[str, Any] = {"max_tokens": a.n_gen, "temperature": 0}
    if a.raw:
        return model_obj.stream(a.prompt, **opts)
    return model_obj.chat([{"role": "user", "content": a.prompt}], stream=True, **opts)


def stream_decode_rate(model_obj: Any, a: argparse.Namespace) -> tuple[float, int, float | None]:
    """(tokens/s from the first streamed piece to the end, completion tokens,
    the engine's own decode_per_second for this run when the stream exposes it).

    Like for like with ohai-cli's `decode_per_second` = completion_tokens / decode_ms:
    the first token comes from the prompt's logits, so both spans hold
    completion_tokens - 1 decode steps; the Python one adds every cost of streaming.
    """
    first = 0.0
    pieces = 0
    it = start_stream(model_obj, a)
    for _ in it:
        if pieces == 0:
            first = time.perf_counter()
        pieces += 1
    elapsed = time.perf_counter() - first
    # A piece is normally one token, but never splits a UTF-8 character: prefer the
    # token count of the finished completion when the iterator exposes it.
    completion = getattr(it, "completion", None)
    usage = getattr(completion, "usage", None)
    tokens = int(getattr(usage, "completion_tokens", pieces))
    timings = getattr(completion, "timings", None)
    engine_rate = getattr(timings, "decode_per_second", None)
    if pieces < MIN_STREAM_TOKENS or elapsed <= 0:
        die(f"Python stream produced {pieces} piece(s); {STREAM_HINT}")
    return tokens / elapsed, tokens, None if engine_rate is None else float(engine_rate)


def run_stream(model: Path, a: argparse.Namespace) -> tuple[Samples, Samples, dict[str, Any]]:
    ohai = import_ohai()
    cli = find_ohai_cli()
    try:
        m = ohai.Model(str(model), threads=a.threads)
    except Exception as e:  # report the load failure in one line
        die(f"ohai.Model({model}) failed: {e}")
    stream_decode_rate(m, a)  # warm-up: page in the weights, first-call allocations
    py, native = Samples(), Samples()
    tokens: dict[str, list[int]] = {"python_completion_tokens": [], "cli_completion_tokens": []}
    engine: list[float] = []  # engine-side decode t/s of the Python runs, for diagnosis
    for i in range(a.stream_reps):
        # Alternate which side goes first, as for pp/tg.
        for side in ("cli", "python") if i % 2 == 0 else ("python", "cli"):
            log(f"stream rep {i + 1}/{a.stream_reps}: {side}")
            if side == "cli":
                rate, n = cli_decode_rate(cli, model, a)
                native.values.append(rate)
                tokens["cli_completion_tokens"].append(n)
            else:
                rate, n, engine_rate = stream_decode_rate(m, a)
                py.values.append(rate)
                tokens["python_completion_tokens"].append(n)
                if engine_rate is not None:
                    engine.append(engine_rate)
    short = [n for ns in tokens.values() for n in ns if n < a.n_gen]
    if short:
        log(f"warning: generation stopped before {a.n_gen} tokens ({min(short)}); "
            "per-token rates are still compared, but use a prompt that makes the model write longer")
    close = getattr(m, "close", None)
    if callable(close):
        close()  # free the context before the report; nothing else runs after this
    details = {"ohai_cli": str(cli), "prompt": a.prompt, "chat_template": not a.raw}
    return native, py, {**details, **tokens, "python_engine_decode_ts": engine}


# --------------------------------------------------------------------------- report

@dataclass
class Row:
    test: str
    baseline: str
    baseline_ts: float
    baseline_stddev: float
    ohai_ts: float | None
    ohai_stddev: float | None
    ratio: float | None
    target: float
    met: bool | None
    baseline_samples: list[float]
    ohai_samples: list[float]


def make_row(test: str, baseline: str, ref: Samples, cand: Samples | None, target: float) -> Row:
    ratio = cand.mean / ref.mean if cand and cand.values and ref.mean > 0 else None
    return Row(test=test, baseline=baseline, baseline_ts=ref.mean, baseline_stddev=ref.stddev,
               ohai_ts=cand.mean if cand and cand.values else None,
               ohai_stddev=cand.stddev if cand and cand.values else None,
               ratio=ratio, target=target, met=None if ratio is None else ratio >= target,
               baseline_samples=ref.values, ohai_samples=cand.values if cand else [])


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: keep platform's answer
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "nproc": usable, "cpu_count": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version()}


def fmt_ts(mean: float | None, sd: float | None) -> str:
    return "-" if mean is None else f"{mean:.2f} ± {sd or 0.0:.2f}"


def markdown_table(rows: list[Row]) -> str:
    head = ["test", "baseline", "baseline t/s", "ohai t/s", "ratio", "target", "met"]
    body = [[r.test, r.baseline, fmt_ts(r.baseline_ts, r.baseline_stddev), fmt_ts(r.ohai_ts, r.ohai_stddev),
             "-" if r.ratio is None else f"{r.ratio:.3f}", f"≥ {r.target:.2f}",
             "-" if r.met is None else ("yes" if r.met else "NO")] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    right = {2, 3, 4, 5}  # numeric columns, right-aligned as in llama-bench's output

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if i in right else "-" * w
                            for i, w in enumerate(widths)) + " |"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def print_text(report: dict[str, Any], rows: list[Row]) -> None:
    m, ll, p = report["machine"], report["llama_cpp"], report["params"]
    print(f"machine:   {m['cpu']} (nproc {m['nproc']})")
    print(f"llama.cpp: build {ll['build']} ({ll['pinned']})")
    print(f"model:     {report['model']}")
    print(f"params:    threads {p['threads']}, -p {p['n_prompt']} -n {p['n_gen']}, "
          f"{p['repetitions']} repetitions; order: {', '.join(p['order'])}")
    if report.get("stream"):
        how = "raw" if report["stream"].get("chat_template") is False else "as a chat user message"
        print(f"stream:    {p['stream_reps']} reps per side, prompt {p['prompt']!r} {how}")
    print()
    print(markdown_table(rows))
    print()
    print("ratio = ohai / baseline; stream row: Python streaming vs native ohai-cli decode tokens/s.")


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("-m", "--model", type=Path, help="GGUF model (default: ohai.default_model_path())")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens for the pp test")
    ap.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens for tg and stream tests")
    ap.add_argument("-r", "--repetitions", type=int, default=10, help="repetitions per side for pp/tg")
    ap.add_argument("--rounds", type=int, default=0,
                    help="split the repetitions over this many alternating invocations per side; 0 = one "
                         "invocation per repetition (finest interleaving: this machine drifts between speed levels)")
    ap.add_argument("--stream-reps", type=int, default=3, help="timed runs per side for the stream test")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt for the stream test")
    ap.add_argument("--raw", action="store_true",
                    help="stream test: send --prompt as is, without the chat template (both sides)")
    ap.add_argument("--llama-bench", type=Path, help="use this llama-bench binary instead of building one")
    ap.add_argument("--llama-bench-args", default="", help="extra arguments for llama-bench (one string)")
    ap.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    ap.add_argument("-j", "--jobs", type=int, help="parallel jobs for the llama-bench build")
    ap.add_argument("--skip-stream", action="store_true", help="skip the Python stream vs ohai-cli test")
    ap.add_argument("--baseline-only", action="store_true", help="run llama-bench only (needs --model)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    a = ap.parse_args(argv)
    for name in ("threads", "repetitions", "stream_reps"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.rounds < 0:
        ap.error("--rounds must be >= 0")
    a.rounds = a.rounds or a.repetitions
    if a.n_prompt < 0 or a.n_gen < 0 or a.n_prompt + a.n_gen == 0:
        ap.error("-p/-n must be >= 0 and not both 0")
    if a.baseline_only and a.model is None:
        ap.error("--baseline-only needs --model (the default model path comes from ohai)")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    if a.llama_bench is not None:
        binary = a.llama_bench.expanduser().resolve()
        if not binary.is_file():
            die(f"llama-bench not found: {binary}")
        ensure_llama_tree()
    else:
        binary = build_llama_bench(a.build_dir.resolve(), a.jobs)
    model = resolve_model(a.model)
    with_ohai = not a.baseline_only
    if with_ohai:
        import_ohai()  # fail early, before minutes of benchmarking

    lb, oh, order, lb_raw = run_pp_tg(binary, model, a, with_ohai)
    rows = [make_row(t, "llama-bench", s, oh.get(t), TARGET_PP_TG) for t, s in lb.items()]
    stream: dict[str, Any] | None = None
    if with_ohai and not a.skip_stream and a.n_gen >= MIN_STREAM_TOKENS:
        native, py, stream = run_stream(model, a)
        rows.append(make_row(f"stream tg{a.n_gen} (python vs ohai-cli)", "ohai-cli", native, py, TARGET_STREAM))

    pinned, build = pinned_info()
    first = lb_raw[0] if lb_raw else {}
    report: dict[str, Any] = {
        "machine": machine_info(),
        "llama_cpp": {"pinned": pinned, "build": build, "llama_bench": str(binary),
                      "build_commit": first.get("build_commit"), "cpu_info": first.get("cpu_info"),
                      "backends": first.get("backends")},
        "model": str(model),
        "params": {"threads": a.threads, "n_prompt": a.n_prompt, "n_gen": a.n_gen,
                   "repetitions": a.repetitions, "order": order, "stream_reps": a.stream_reps,
                   "prompt": a.prompt, "llama_bench_args": a.llama_bench_args},
        "results": [asdict(r) for r in rows],
        "stream": stream,
    }
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(report, rows)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench_vs_llama_cpp: interrupted")
