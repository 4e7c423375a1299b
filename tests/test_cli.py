"""The command lines, run as a user would: `ohai ...`, `python -m ohai`, and the native `ohai-cli`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ohai

from conftest import run_ohai


def test_run_streams_an_answer(default_model_path: str) -> None:
    r = run_ohai("run", "-m", default_model_path, "--temp", "0", "-n", "24", "--chat", "What is the capital of France?")
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout


def test_default_command_and_stdin(default_model_path: str) -> None:
    as_arg = run_ohai("-m", default_model_path, "--temp", "0", "-n", "12", "Once upon a time")
    piped = run_ohai("-m", default_model_path, "--temp", "0", "-n", "12", input="Once upon a time")
    assert as_arg.returncode == 0 and piped.returncode == 0, as_arg.stderr + piped.stderr
    assert as_arg.stdout == piped.stdout
    assert len(as_arg.stdout.strip()) > 10


def test_run_json(default_model_path: str, ohai_cli_bin: str) -> None:
    r = run_ohai("run", "-m", default_model_path, "--temp", "0", "-n", "5", "--json", "Hello")
    data = json.loads(r.stdout)
    assert list(data) == ["text", "finish_reason", "usage", "timings"]
    assert data["finish_reason"] == "length"
    assert data["usage"] == {"prompt_tokens": data["usage"]["prompt_tokens"], "completion_tokens": 5,
                             "cached_prompt_tokens": 0}
    assert data["timings"]["decode_per_second"] > 0
    # One JSON shape for every entry point: ohai-cli --json prints the same fields and text.
    native = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "Hello", "-n", "5", "--temp", "0", "--json"],
                            capture_output=True, text=True, timeout=300)
    other = json.loads(native.stdout)
    assert list(other) == list(data) and list(other["usage"]) == list(data["usage"])
    assert list(other["timings"]) == list(data["timings"])
    assert (other["text"], other["usage"]) == (data["text"], data["usage"])


def test_sampling_defaults_come_from_the_engine() -> None:
    import inspect

    from ohai import _core
    from ohai.defaults import SAMPLING

    core = _core.SamplingParams()
    assert SAMPLING.temperature == pytest.approx(core.temperature) and SAMPLING.top_k == core.top_k
    assert SAMPLING.max_tokens == _core.GenerateRequest().max_tokens
    sig = inspect.signature(ohai.Model.generate).parameters
    assert sig["temperature"].default == SAMPLING.temperature and sig["top_p"].default == SAMPLING.top_p
    assert sig["max_tokens"].default == SAMPLING.max_tokens


def test_run_seed_is_reproducible(default_model_path: str) -> None:
    a = run_ohai("run", "-m", default_model_path, "--seed", "7", "-n", "16", "Tell me a joke")
    b = run_ohai("run", "-m", default_model_path, "--seed", "7", "-n", "16", "Tell me a joke")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_chat_keeps_history(default_model_path: str) -> None:
    def chat(conversation: str) -> str:
        r = run_ohai("chat", "-m", default_model_path, "--temp", "0", "-n", "24", input=conversation)
        assert r.returncode == 0, r.stderr
        return r.stdout

    alone = chat("What is my name?\n")
    after_reset = chat("My name is Ada.\n/reset\nWhat is my name?\n")
    with_history = chat("My name is Ada.\nWhat is my name?\n")
    assert after_reset.endswith(alone)  # /reset forgets the first turn
    first_answer = after_reset[: len(after_reset) - len(alone)]
    assert with_history.startswith(first_answer)
    assert not with_history.endswith(alone)  # the second answer saw the first turn


def test_info(default_model_path: str) -> None:
    r = run_ohai("info", "-m", default_model_path, "--json")
    info = json.loads(r.stdout)
    assert info["arch"] == "llama" and info["file_type"] == "Q4_1" and info["n_vocab"] == 49152
    text = run_ohai("info", "-m", default_model_path)
    assert "architecture" in text.stdout and "llama" in text.stdout


def test_info_uses_default_model() -> None:
    r = run_ohai("info", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_bench(default_model_path: str) -> None:
    r = run_ohai("bench", "-m", default_model_path, "-p", "32", "-n", "8", "-r", "2", "-t", "2", "--json")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    assert [x["test"] for x in records] == ["pp32", "tg8"]
    assert all(x["avg_ts"] > 0 and len(x["samples_ts"]) == 2 and x["n_threads"] == 2 for x in records)
    table = run_ohai("bench", "-m", default_model_path, "-p", "16", "-n", "4", "-r", "1")
    assert "| model" in table.stdout and "pp16" in table.stdout and "tg4" in table.stdout


def test_quantize_cli(tiny_model_path: Path, tmp_path: Path) -> None:
    dst = tmp_path / "tiny-q8.gguf"
    r = run_ohai("quantize", str(tiny_model_path), str(dst), "q8_0")
    assert r.returncode == 0, r.stderr
    assert dst.exists() and dst.stat().st_size < tiny_model_path.stat().st_size
    info = json.loads(run_ohai("info", "-m", str(dst), "--json").stdout)
    assert info["file_type"] == "Q8_0"


def test_errors_are_one_line(tmp_path: Path) -> None:
    for args in (["run", "-m", str(tmp_path / "nope.gguf"), "hi"], ["quantize", "a", "b", "Q4_0"],
                 ["bench", "-m", str(tmp_path)], ["run", "--temp", "abc", "hi"], ["frobnicate-option", "--x"]):
        r = run_ohai(*args)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_no_prompt_is_an_error() -> None:
    r = run_ohai("run")
    assert r.returncode == 1 and "prompt" in r.stderr


def test_ctrl_c_cancels_cleanly(default_model_path: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ohai", "run", "-m", default_model_path, "-n", "5000",
                             "--temp", "0", "--chat", "Write a very long story about dragons."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.read(20)  # it is streaming
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert time.monotonic() - start < 30


def test_native_cli(default_model_path: str, ohai_cli_bin: str) -> None:
    r = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "What is the capital of France?", "--chat",
                        "-n", "24", "--temp", "0", "-t", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout
    j = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "Hello", "-n", "4", "--temp", "0", "--json"],
                       capture_output=True, text=True, timeout=300)
    data = json.loads(j.stdout)
    assert data["usage"]["completion_tokens"] == 4 and data["finish_reason"] == "length"


def test_native_cli_matches_python(default_model_path: str, ohai_cli_bin: str) -> None:
    py = run_ohai("run", "-m", default_model_path, "--temp", "0", "-n", "20", "The ocean is")
    native = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "The ocean is", "-n", "20", "--temp", "0"],
                            capture_output=True, text=True, timeout=300)
    assert native.stdout == py.stdout


def test_native_cli_usage_errors(ohai_cli_bin: str) -> None:
    for args in ([], ["-m"], ["-m", "x.gguf"], ["-m", "x", "-p", "y", "-n", "many"], ["--bogus"]):
        r = subprocess.run([ohai_cli_bin, *args], capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.startswith("ohai-cli: error:"), (args, r.stderr)


def test_python_dash_m_help() -> None:
    r = subprocess.run([sys.executable, "-m", "ohai", "--help"], capture_output=True, text=True,
                       env={**os.environ})
    assert r.returncode == 0
    for command in ("run", "chat", "info", "bench", "quantize"):
        assert command in r.stdout


def test_chat_forgets_old_turns_when_the_context_fills(default_model_path: str) -> None:
    turns = "Tell me about the moon.\nAnd the sun?\nAnd Mars?\nAnd Venus?\nAnd Jupiter?\n"
    r = run_ohai("chat", "-m", default_model_path, "-c", "160", "-n", "40", "--temp", "0", input=turns)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert len([line for line in r.stdout.splitlines() if line.strip()]) >= 5


@pytest.mark.parametrize("log", ["", "error"])
def test_ctrl_c_stops_bench(default_model_path: str, log: str) -> None:
    # With native logging on, the aborted benchmark logs from its own thread while Ctrl-C is handled.
    proc = subprocess.Popen([sys.executable, "-m", "ohai", "bench", "-m", default_model_path, "-p", "512", "-n", "512",
                             "-r", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OHAI_LOG": log})
    time.sleep(3)  # loaded and measuring
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert time.monotonic() - start < 10
