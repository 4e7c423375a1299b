"""The net under model loading: a model file that kills, crashes or hangs the engine does so in the
ohai-isolate child process (the probe), and the caller gets ModelLoadError instead of dying."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

import ohai


def _fresh_copy(default_model_path: str, directory: Path, name: str = "model.gguf") -> Path:
    """A file the probe has never seen (new path and inode), without copying 100 MB each time."""
    target = directory / name
    try:
        os.link(default_model_path, target)
    except OSError:
        target.write_bytes(Path(default_model_path).read_bytes())
    return target


@pytest.mark.parametrize("fault, message", [
    ("abort", "crashed a test decode in a separate process (SIGABRT)"),
    ("segv", "crashed a test decode in a separate process (SIGSEGV)"),
    ("error", "injected failure"),
    ("hang", "did not finish a test decode within 3 s"),
])
def test_a_probe_that_dies_becomes_model_load_error(tmp_path: Path, default_model_path: str,
                                                    monkeypatch: pytest.MonkeyPatch, fault: str, message: str) -> None:
    path = _fresh_copy(default_model_path, tmp_path)
    monkeypatch.setenv("OHAI_ISOLATE_FAULT", fault)
    monkeypatch.setenv("OHAI_PROBE_TIMEOUT", "3")
    started = time.monotonic()
    with pytest.raises(ohai.ModelLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ohai.Model(path)
    assert time.monotonic() - started < 30
    # The process is fine, and the file is not remembered as good.
    monkeypatch.delenv("OHAI_ISOLATE_FAULT")
    monkeypatch.delenv("OHAI_PROBE_TIMEOUT")
    with ohai.Model(path, n_ctx=128) as m:
        assert m.generate("Hi", max_tokens=2, temperature=0).usage.completion_tokens == 2


def test_a_file_is_probed_once_until_it_changes(tmp_path: Path, default_model_path: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = _fresh_copy(default_model_path, tmp_path)
    ohai.Model(path).close()  # probed, and remembered
    monkeypatch.setenv("OHAI_ISOLATE_FAULT", "abort")
    ohai.Model(path).close()  # not probed again: the fault never runs
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))  # "changed": probed again
    with pytest.raises(ohai.ModelLoadError, match="SIGABRT"):
        ohai.Model(path)


def test_the_probe_result_is_shared_across_processes(tmp_path: Path, default_model_path: str) -> None:
    path = _fresh_copy(default_model_path, tmp_path)
    env = {**os.environ, "OHAI_HOME": str(tmp_path / "home")}
    script = "import ohai, sys; ohai.Model(sys.argv[1]).close(); print('loaded')"
    first = subprocess.run([ohai_python(), "-c", script, str(path)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert list((tmp_path / "home" / "probed").iterdir())
    # A second process trusts the cache: the injected fault is never reached.
    second = subprocess.run([ohai_python(), "-c", script, str(path)], env={**env, "OHAI_ISOLATE_FAULT": "abort"},
                            capture_output=True, text=True)
    assert second.returncode == 0 and "loaded" in second.stdout, second.stderr


def ohai_python() -> str:
    import sys

    return sys.executable


def test_native_cli_probes_too(tmp_path: Path, default_model_path: str, ohai_cli_bin: str) -> None:
    path = _fresh_copy(default_model_path, tmp_path)
    r = subprocess.run([ohai_cli_bin, "-m", str(path), "-p", "hi", "-n", "2"], capture_output=True, text=True,
                       env={**os.environ, "OHAI_ISOLATE_FAULT": "abort", "OHAI_HOME": str(tmp_path / "home")})
    assert r.returncode == 1 and "ohai-cli: error:" in r.stderr and "SIGABRT" in r.stderr, r.stderr


def test_helper_is_installed_next_to_the_engine(ohai_cli_bin: str) -> None:
    assert (Path(ohai._core.__file__).parent / "ohai-isolate").is_file()
    assert (Path(ohai_cli_bin).parent / "ohai-isolate").is_file()


def test_without_the_helper_models_still_load(tmp_path: Path, default_model_path: str) -> None:
    """A build without ohai-isolate (e.g. a plain library user) loads models, with a warning."""
    path = _fresh_copy(default_model_path, tmp_path)
    script = ("import logging, ohai, sys\n"
              "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
              "ohai.set_log_level('warning')\n"
              "m = ohai.Model(sys.argv[1], n_ctx=64); print(m.generate('Hi', max_tokens=2, temperature=0).usage.completion_tokens)\n")
    r = subprocess.run([ohai_python(), "-c", script, str(path)], capture_output=True, text=True,
                       env={**os.environ, "OHAI_ISOLATE": str(tmp_path / "missing"), "OHAI_HOME": str(tmp_path / "h")})
    assert r.returncode == 0 and r.stdout.strip() == "2", r.stderr
    assert "ohai-isolate not found" in r.stderr
