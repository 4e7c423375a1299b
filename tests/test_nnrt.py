"""The NNRt adapter with the simulated device (tests/nnrt_sim: real float32 results, strict argument
checks, counters, injected faults). Every run is a subprocess: NNRt is loaded once per process, from
OHAI_NNRT_LIBRARY_DIR, as on a device."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tiny_model import make_tiny_llama

ROOT = Path(__file__).resolve().parent.parent
PROMPT = ("The history of the city begins with a small harbour on the river, where fishermen and traders met "
          "every morning to exchange news, grain and salt before the markets opened.")

# Runs in the child: loads the model on `device`, computes the logits of the prompt (decoded as one
# batch, so its matrix multiplications have enough rows to be offloaded) and a short greedy text.
CHILD = r"""
import json, sys
import numpy as np
import ohai
path, device, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
with ohai.Model(path, n_ctx=512, threads=2, device=device) as m:
    tokens = m.tokenize(prompt)
    logits = np.asarray(m.logits(tokens))
    text = m.generate(prompt, max_tokens=12, temperature=0).text
    out = {"device": m.info.device, "logits": logits.tolist(), "text": text, "tokens": len(tokens),
           "nnrt": ohai.nnrt_stats(), "stats_nnrt": m.stats()["nnrt"]}
print(json.dumps(out))
"""


def _sim_dir() -> Path:
    found = sorted(ROOT.glob("build/*/nnrt_sim/libneural_network_runtime.so"))
    if not found:
        pytest.fail("the simulated NNRt device is not built; run `make install` (OHAI_BUILD_TESTS=ON builds it)")
    return found[0].parent


def _run(model: str | Path, device: str, tmp_path: Path, *, sim: bool = True, fault: str | None = None,
         dequantize: bool = True, min_batch: int = 8, cache_dir: Path | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OHAI_NNRT", "LD_LIBRARY_PATH"))}
    env["OHAI_NNRT_LIBRARY_DIR"] = str(_sim_dir()) if sim else "/nonexistent"
    env["OHAI_NNRT_MIN_BATCH"] = str(min_batch)
    env["OHAI_NNRT_DEQUANTIZE"] = "1" if dequantize else "0"
    stats_file = tmp_path / f"sim-stats-{device.replace(':', '_')}-{fault or 'none'}.json"
    env["OHAI_NNRT_SIM_STATS"] = str(stats_file)
    if fault:
        env["OHAI_NNRT_SIM_FAULT"] = fault
    if cache_dir is not None:
        env["OHAI_NNRT_CACHE_DIR"] = str(cache_dir)
    r = subprocess.run([sys.executable, "-c", CHILD, str(model), device, PROMPT], capture_output=True, text=True,
                       timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    out["stderr"] = r.stderr
    out["sim"] = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return out


@pytest.fixture(scope="module")
def f16_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("nnrt") / "tiny-f16.gguf", f16=True, n_embd=128, n_ff=256,
                           n_layer=2, n_ctx_train=512)


@pytest.fixture(scope="module")
def f16_cpu(f16_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(f16_model, "cpu", tmp_path_factory.mktemp("cpu"), sim=False)


def _max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    return float(np.max(np.abs(np.asarray(a["logits"]) - np.asarray(b["logits"]))))


def test_devices_lists_the_simulated_accelerator(tmp_path: Path) -> None:
    env = {**os.environ, "OHAI_NNRT_LIBRARY_DIR": str(_sim_dir())}
    r = subprocess.run([sys.executable, "-m", "ohai", "devices", "--json"], capture_output=True, text=True,
                       timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    kinds = [(d["kind"], d["type"]) for d in info["devices"]]
    assert kinds == [("cpu", "cpu"), ("nnrt", "accelerator")]
    assert info["devices"][1]["name"] == "ohai_sim_npu_ohai_v1_0" and info["nnrt_status"] == ""
    # Core alone registers no device (the runtime library does, as on a device): the loader loads both.
    assert info["devices"][1]["supported_ops"]


def test_offload_equals_cpu_on_an_f16_model(f16_model: Path, f16_cpu: dict[str, Any], tmp_path: Path) -> None:
    nnrt = _run(f16_model, "nnrt", tmp_path)
    assert nnrt["device"] == "nnrt:ohai_sim_npu_ohai_v1_0" and f16_cpu["device"] == "cpu"
    # The offload really happened: the adapter's counters and the simulator's own.
    assert nnrt["nnrt"]["ops_offloaded"] > 0 and nnrt["nnrt"]["ops_fallback"] == 0
    assert nnrt["stats_nnrt"]["ops_offloaded"] == nnrt["nnrt"]["ops_offloaded"]
    assert nnrt["sim"]["runs"] == nnrt["nnrt"]["ops_offloaded"] and nnrt["sim"]["builds"] > 0
    assert f16_cpu["nnrt"]["ops_offloaded"] == 0
    # F16 weights either way; the CPU also rounds the activations to F16 for its F16 kernel, the
    # simulator keeps them in F32: differences of the order of F16's precision (2^-11 relative).
    scale = float(np.max(np.abs(np.asarray(f16_cpu["logits"]))))
    assert _max_diff(nnrt, f16_cpu) <= 1e-2 * scale, (_max_diff(nnrt, f16_cpu), scale)
    assert nnrt["text"] == f16_cpu["text"]


def test_auto_uses_the_accelerator_and_cpu_does_not(f16_model: Path, tmp_path: Path) -> None:
    auto = _run(f16_model, "auto", tmp_path)
    assert auto["device"].startswith("nnrt:") and auto["nnrt"]["ops_offloaded"] > 0
    cpu = _run(f16_model, "cpu", tmp_path)
    assert cpu["device"] == "cpu" and cpu["nnrt"]["ops_offloaded"] == 0 and cpu["sim"].get("runs", 0) == 0


def test_single_token_decoding_stays_on_the_cpu(f16_model: Path, tmp_path: Path) -> None:
    # Above the prompt's length: nothing is worth a device call.
    out = _run(f16_model, "nnrt", tmp_path, min_batch=4096)
    assert out["nnrt"]["ops_offloaded"] == 0 and out["sim"].get("runs", 0) == 0


@pytest.mark.parametrize("fault", ["no_devices", "op_unsupported", "build_fail", "run_fail", "fail_after:3",
                                   "wrong_output_size"])
def test_faults_fall_back_to_the_cpu(f16_model: Path, f16_cpu: dict[str, Any], tmp_path: Path, fault: str) -> None:
    out = _run(f16_model, "auto", tmp_path, fault=fault)
    assert out["text"] == f16_cpu["text"], fault
    scale = float(np.max(np.abs(np.asarray(f16_cpu["logits"]))))
    assert _max_diff(out, f16_cpu) <= 1e-2 * scale
    stats = out["nnrt"]
    if fault == "no_devices":
        assert out["device"] == "cpu" and stats["ops_offloaded"] == 0
        return
    assert out["device"].startswith("nnrt:")
    assert stats["ops_fallback"] > 0 and stats["fallback_reasons"], stats
    if fault == "fail_after:3":
        # A device lost half-way: the first runs counted, then the CPU took over.
        assert stats["ops_offloaded"] == 3 and stats["run_failures"] >= 1
    if fault in ("build_fail", "run_fail", "wrong_output_size"):
        assert stats["ops_offloaded"] == 0
    if fault in ("build_fail", "run_fail", "fail_after:3"):
        assert stats["device_disabled"] is True
    # One line per distinct failure, not one per operation.
    assert out["stderr"].count("nnrt:") <= 6


def test_default_model_with_dequantized_weights(default_model_path: str, tmp_path: Path) -> None:
    cpu = _run(default_model_path, "cpu", tmp_path, sim=False)
    nnrt = _run(default_model_path, "nnrt", tmp_path)
    assert nnrt["nnrt"]["ops_offloaded"] > 0 and nnrt["nnrt"]["ops_fallback"] == 0
    # The CPU multiplies Q4_1 weights by activations quantized to 8 bits (Q8_1); the device gets
    # the same weights dequantized to F16 and F32 activations. The 8-bit activations are the
    # larger error, so the tolerance is that of an 8-bit quantization of the logits' inputs
    # (measured on the 2-core Intel test machine: 0.040 of the largest logit, argmax equal at 97 %
    # of the positions and at the last one).
    a, b = np.asarray(cpu["logits"]), np.asarray(nnrt["logits"])
    assert np.argmax(a[-1]) == np.argmax(b[-1])
    rel = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    assert rel <= 0.05, rel
    # Without dequantize, quantized weights stay on the CPU.
    plain = _run(default_model_path, "nnrt", tmp_path, dequantize=False)
    assert plain["nnrt"]["ops_offloaded"] == 0 and plain["text"] == cpu["text"]


def test_compilation_cache(f16_model: Path, f16_cpu: dict[str, Any], tmp_path: Path) -> None:
    cache = tmp_path / "nncache"
    cache.mkdir()
    first = _run(f16_model, "nnrt", tmp_path, cache_dir=cache)
    # One subdirectory per distinct executor (weight and shape; the generation and the logits
    # contexts compile the same ones): NNRt would otherwise restore one executor's compiled model
    # for every weight. The tiny model has 2 layers x 7 matrices + the output matrix.
    dirs = [d for d in cache.iterdir() if d.name.startswith("ohai-")]
    assert 15 <= len(dirs) <= first["nnrt"]["executors_built"]
    second = _run(f16_model, "nnrt", tmp_path, cache_dir=cache)
    assert second["sim"]["cache_hits"] > 0 and second["text"] == f16_cpu["text"]
    scale = float(np.max(np.abs(np.asarray(f16_cpu["logits"]))))
    assert _max_diff(second, f16_cpu) <= 1e-2 * scale
    # A cache directory that cannot be used costs the cache, not the offload.
    broken = _run(f16_model, "nnrt", tmp_path, cache_dir=tmp_path / "missing" / "dir")
    assert broken["nnrt"]["ops_offloaded"] > 0 and not broken["nnrt"]["device_disabled"]
