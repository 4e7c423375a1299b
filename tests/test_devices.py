"""Devices without NNRt: the CPU alone, a clear error for device="nnrt", and the same choice in
every entry point (Python, CLIs, the ai_engine plugin). The NNRt adapter with the simulated
device is tested in test_nnrt.py."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import ohai
from conftest import run_ohai
from ohai import aie

NO_NNRT_ENV = {"OHAI_NNRT_LIBRARY_DIR": "/nonexistent"}


@pytest.fixture(autouse=True)
def _no_nnrt(monkeypatch: pytest.MonkeyPatch) -> None:
    # The simulated NNRt libraries must not be found by the dynamic linker here.
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.setenv("OHAI_NNRT_LIBRARY_DIR", "/nonexistent")


def test_devices_without_nnrt() -> None:
    r = run_ohai("devices", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert [d["kind"] for d in info["devices"]] == ["cpu"]
    assert "not installed" in info["nnrt_status"]
    text = run_ohai("devices")
    assert text.returncode == 0 and "no NNRt accelerator" in text.stdout


def test_auto_and_cpu_run_on_the_cpu(default_model_path: str) -> None:
    for device in ("auto", "cpu"):
        with ohai.Model(default_model_path, n_ctx=256, threads=2, device=device) as m:
            assert m.info.device == "cpu"
            assert m.generate("Hello", max_tokens=2, temperature=0).usage.completion_tokens == 2
            assert m.stats()["nnrt"]["ops_offloaded"] == 0


@pytest.mark.parametrize("device", ["nnrt", "nnrt:npu0"])
def test_nnrt_without_a_device_is_a_clear_error(default_model_path: str, device: str) -> None:
    with pytest.raises(ohai.InvalidRequestError, match="no NNRt device"):
        ohai.Model(default_model_path, device=device)
    r = run_ohai("run", "-m", default_model_path, "--device", device, "-n", "2", "Hello")
    assert r.returncode == 1 and "no NNRt device" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("device", ["gpu", "", "nnrt:", 5, None])
def test_bad_device_values(default_model_path: str, device: object) -> None:
    with pytest.raises(ohai.InvalidRequestError, match="device"):
        ohai.Model(default_model_path, device=device)  # type: ignore[arg-type]


def test_native_cli_device(default_model_path: str, ohai_cli_bin: str) -> None:
    env = {"PATH": "/usr/bin:/bin", **NO_NNRT_ENV}
    ok = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "Hi", "-n", "2", "--temp", "0", "--device", "cpu"],
                        capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "Hi", "--device", "nnrt"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 1 and "no NNRt device" in bad.stderr


def test_plugin_prepare_device(monkeypatch: pytest.MonkeyPatch, default_model_path: str) -> None:
    monkeypatch.setenv("OHAI_AIE_MODEL_DIR", str(Path(default_model_path).parent))
    monkeypatch.delenv("OHAI_AIE_CONFIG", raising=False)
    with aie.PluginHost(aie.plugin_library("async")) as host:
        txn, out = host.prepare({"model": Path(default_model_path).name, "n_ctx": 256, "device": "cpu"})
        assert out["model"]["device"] == "cpu"
        host.release(txn)
        with pytest.raises(aie.PluginCallError) as e:
            host.prepare({"model": Path(default_model_path).name, "device": "nnrt"})
        assert e.value.code == "invalid_request" and "no NNRt device" in e.value.message
        with pytest.raises(aie.PluginCallError) as e:
            host.prepare({"model": Path(default_model_path).name, "device": 3})
        assert e.value.code == "invalid_request"
