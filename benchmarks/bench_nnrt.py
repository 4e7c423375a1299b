#!/usr/bin/env python3
"""The NNRt adapter's own overhead: prompt-processing throughput on the CPU alone vs with matrix
multiplications offloaded to the simulated NNRt device (tests/nnrt_sim).

The simulator computes on this same CPU (float32 loops, not ggml's tuned kernels), so the offloaded
figure is not an accelerator's speed. What this shows is the cost the adapter adds per device call:
copying activations in and results out, the executor lookup, and the graph splits around every
offloaded MUL_MAT. That cost is measured directly too: the simulator can be told to do no work
beyond its checks (OHAI_NNRT_SIM_SLOW_US unset, tiny weights), and the adapter reports the time
spent inside NNRt calls. Each configuration runs in its own process (NNRt is loaded once per
process), in ABBA order.

    python benchmarks/bench_nnrt.py                    # generated F16 model + the default model
    python benchmarks/bench_nnrt.py -p 256 -r 5 --json

A measurement, not a test: it prints ratios and never asserts timings.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CHILD = r"""
import json, sys
import ohai
path, device, n_prompt, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with ohai.Model(path, device=device) as m:
    r = m.bench(n_prompt=n_prompt, n_gen=0, repetitions=reps, threads=2)[0]
    print(json.dumps({"device": m.info.device, "pp": r["avg_ts"], "sd": r["stddev_ts"], "nnrt": ohai.nnrt_stats()}))
"""


def sim_dir() -> Path:
    found = sorted(ROOT.glob("build/*/nnrt_sim/libneural_network_runtime.so"))
    if not found:
        sys.exit("bench_nnrt: the simulated NNRt device is not built (make install builds it)")
    return found[0].parent


def run(model: Path, device: str, n_prompt: int, reps: int, dequantize: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OHAI_NNRT")}
    env.update(OHAI_NNRT_LIBRARY_DIR=str(sim_dir()), OHAI_NNRT_DEQUANTIZE="1" if dequantize else "0",
               OHAI_NNRT_SIM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", CHILD, str(model), device, str(n_prompt), str(reps)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    if r.returncode != 0:
        sys.exit(f"bench_nnrt: {device} run failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--n-prompt", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="ABBA rounds per model")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-default-model", action="store_true")
    a = ap.parse_args()

    from tiny_model import make_tiny_llama

    import ohai

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("generated F16 (n_embd 512, 4 layers)", make_tiny_llama(
            Path(tmp) / "f16.gguf", f16=True, n_embd=512, n_head=8, n_head_kv=4, n_ff=1024, n_layer=4,
            n_ctx_train=1024), False)]
        if not a.skip_default_model:
            models.append(("SmolLM2-135M Q4_1 (weights dequantized to F16)", Path(ohai.default_model_path()), True))
        for label, path, dequantize in models:
            samples: dict[str, list[dict[str, Any]]] = {"cpu": [], "nnrt": []}
            for rnd in range(a.rounds):
                order = ("cpu", "nnrt") if rnd % 2 == 0 else ("nnrt", "cpu")
                for device in order:
                    samples[device].append(run(path, device, a.n_prompt, a.reps, dequantize))
            cpu = statistics.fmean(s["pp"] for s in samples["cpu"])
            nnrt = statistics.fmean(s["pp"] for s in samples["nnrt"])
            last = samples["nnrt"][-1]["nnrt"]
            ops = last["ops_offloaded"]
            # Time per offloaded call, from the adapter's own clock (copies + NNRt run).
            per_call_ms = last["device_ms"] / ops if ops else float("nan")
            copy_ms = last["copy_ms"] / ops if ops else float("nan")
            rows.append({"model": label, "n_prompt": a.n_prompt, "cpu_pp": cpu, "nnrt_pp": nnrt,
                         "ratio": nnrt / cpu, "ops_offloaded": ops, "fallbacks": last["ops_fallback"],
                         "device_ms_per_call": per_call_ms,
                         "copy_ms_per_call": copy_ms})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"| model | pp{a.n_prompt} CPU t/s | pp{a.n_prompt} simulated NNRt t/s | NNRt / CPU | calls offloaded | "
          f"fallbacks | ms per call (run + copies) | ms per call copying | copying share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['cpu_pp']:.1f} | {r['nnrt_pp']:.1f} | {r['ratio']:.3f} | {r['ops_offloaded']} | "
              f"{r['fallbacks']} | {r['device_ms_per_call']:.3f} | {r['copy_ms_per_call']:.4f} | "
              f"{r['copy_ms_per_call'] / r['device_ms_per_call']:.2%} |")
    print("\nThe simulator computes on this CPU with plain float32 loops: the throughput ratio shows a naive device, "
          "not an accelerator. The adapter's own work per call is copying activations in and results out (the "
          "copying columns, from the adapter's clock); the rest of a call is the device's.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
