"""Quantization never harms a file the user owns: destinations that are not regular files, existing
files without consent, permissions, and interrupted runs (signals, Ctrl-C) leave nothing behind."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ohai
from conftest import ROOT, run_ohai


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device_symlink"])
def test_refuses_destinations_that_are_not_regular_files(tmp_path: Path, tiny_model_path: Path, kind: str) -> None:
    dst = tmp_path / "out.gguf"
    if kind == "fifo":
        os.mkfifo(dst)
    elif kind == "directory":
        dst.mkdir()
    else:
        dst.symlink_to("/dev/null")  # as root, replacing it would replace the device node
    for overwrite in (False, True):
        with pytest.raises(ohai.InvalidRequestError, match="not a regular file"):
            ohai.quantize(tiny_model_path, dst, "Q8_0", overwrite=overwrite)
    if kind == "fifo":
        assert stat.S_ISFIFO(dst.lstat().st_mode)
    if kind == "device_symlink":
        assert dst.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert _leftovers(tmp_path) == []


def test_existing_file_is_replaced_only_with_overwrite(tmp_path: Path, tiny_model_path: Path) -> None:
    dst = tmp_path / "out.gguf"
    dst.write_bytes(b"precious")
    with pytest.raises(ohai.InvalidRequestError, match="already exists"):
        ohai.quantize(tiny_model_path, dst, "Q8_0")
    assert dst.read_bytes() == b"precious"
    ohai.quantize(tiny_model_path, dst, "Q8_0", overwrite=True)
    assert dst.read_bytes()[:4] == b"GGUF"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_gets_the_mode_of_a_new_file(tmp_path: Path, tiny_model_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        dst = tmp_path / f"out-{umask:o}.gguf"
        ohai.quantize(tiny_model_path, dst, "Q8_0")
        (tmp_path / "plain").write_bytes(b"")
        expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dst.stat().st_mode) == expected == 0o666 & ~umask


def test_vocabulary_only_file_is_refused(tmp_path: Path) -> None:
    import gguf

    src = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(str(src), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b", "c"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ohai.ModelLoadError, match="no tensors"):
        ohai.quantize(src, tmp_path / "out.gguf", "Q8_0")
    assert not (tmp_path / "out.gguf").exists()


_QUANTIZE_SCRIPT = """
import sys, ohai
def progress(done, total):
    print(f"progress {done} {total}", flush=True)
ohai.quantize(sys.argv[1], sys.argv[2], "Q8_0", threads=1, progress=progress)
print("finished", flush=True)
"""


def _start_quantize(src: str, dst: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _QUANTIZE_SCRIPT, src, str(dst)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_progress(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("progress"):
            return
    pytest.fail(f"no progress before the end: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_quantization_leaves_nothing_behind(tmp_path: Path, default_model_path: str, sig: int) -> None:
    dst = tmp_path / "out.gguf"
    proc = _start_quantize(default_model_path, dst)
    _wait_for_progress(proc)
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - started
    assert "finished" not in out, "the quantization ran to its end instead of stopping"
    assert stopped_after < 20
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err and "Exception ignored" not in err
    # The helper process notices its parent's death and removes its partial file.
    deadline = time.monotonic() + 10
    while _leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(tmp_path) == [] and not dst.exists()


def test_cli_refuses_to_replace_without_force(tmp_path: Path, tiny_model_path: Path) -> None:
    dst = tmp_path / "out.gguf"
    dst.write_bytes(b"precious")
    r = run_ohai("quantize", str(tiny_model_path), str(dst), "q8_0")
    assert r.returncode == 1 and "already exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert dst.read_bytes() == b"precious"
    r = run_ohai("quantize", "--force", str(tiny_model_path), str(dst), "q8_0")
    assert r.returncode == 0, r.stderr
    assert dst.read_bytes()[:4] == b"GGUF"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(x) for x in text]
    return found


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_crashed_quantizer_leaves_nothing_behind(tmp_path: Path, default_model_path: str, sig: int) -> None:
    """The helper process dies in a way no handler of its own sees: the caller removes its file."""
    dst = tmp_path / "out.gguf"
    proc = _start_quantize(default_model_path, dst)
    _wait_for_progress(proc)
    helpers = _children(proc.pid)
    assert helpers, "the quantization runs in a child process"
    for pid in helpers:
        os.kill(pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "finished" not in out
    assert "quantization failed in its process" in err or "SIG" in err, err[-500:]
    assert _leftovers(tmp_path) == [] and not dst.exists()
