"""Adversarial input through the `ohai` command line: whatever arrives on each input channel
(stdin, argv, options, environment, closed standard streams), the result is one line on stderr and a
non-zero exit code, never a traceback. The cases are generated per channel × several byte strings.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ohai.cli

ROOT = Path(__file__).resolve().parent.parent

# Byte strings that are not UTF-8: a stray byte, a cut-off sequence, an encoded surrogate, an overlong
# encoding, and Latin-1 text.
NOT_UTF8 = {
    "stray_bytes": b"\xff\xfe",
    "cut_off": b"Hello \xc3",
    "encoded_surrogate": b"\xed\xa0\x80 after",
    "overlong": b"\xc0\xaf",
    "latin1": "Grüße, café".encode("latin-1"),
}


def run_raw(*args: str, input: bytes = b"", close_fd: int | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """`python -m ohai ARGS` from the source tree, in bytes, optionally with fd 0, 1 or 2 closed."""
    def close() -> None:
        if close_fd is not None:
            os.close(close_fd)

    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("OHAI_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ohai", *args], input=None if close_fd == 0 else input,
                          capture_output=True, timeout=timeout, env=full_env, cwd=ROOT,
                          preexec_fn=close if close_fd is not None else None)


def stderr_line(r: subprocess.CompletedProcess[bytes]) -> str:
    """The one line on stderr, after checking there is exactly one and no traceback."""
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def assert_one_line_error(r: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr)
    line = stderr_line(r)
    assert line.startswith("ohai"), line
    for needle in needles:
        assert needle in line, line
    return line


# -- text that is not UTF-8, on every channel -------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_run_stdin_not_utf8(kind: str) -> None:
    r = run_raw("run", "-n", "1", input=NOT_UTF8[kind])
    assert_one_line_error(r, "ohai: error:", "standard input", "not valid UTF-8")
    assert r.stdout == b""


# Every argument channel with one byte string, and two channels with all of them (each run costs ~1 s).
ARGV_CASES = [(channel, "stray_bytes") for channel in ("default_command_prompt", "second_word", "stop", "run_stop_list",
                                                        "chat_stop")]
ARGV_CASES += [(channel, kind) for channel in ("run_prompt", "chat_system") for kind in sorted(NOT_UTF8)]


@pytest.mark.parametrize(("channel", "kind"), ARGV_CASES)
def test_argument_not_utf8(default_model_path: str, channel: str, kind: str) -> None:
    bad = os.fsdecode(NOT_UTF8[kind])  # what Python makes of such an argv entry
    m = ["-m", default_model_path, "-n", "1"]
    args = {
        "run_prompt": ["run", *m, bad],
        "default_command_prompt": [*m, bad],
        "second_word": ["run", *m, "Hello", bad],
        "stop": ["run", *m, "--stop", bad, "Hello"],
        "run_stop_list": ["run", *m, "--stop", "fine", "--stop", bad, "Hello"],
        "chat_system": ["chat", *m, "-s", bad],
        "chat_stop": ["chat", *m, "--stop", bad],
    }[channel]
    what = {"stop": "--stop", "run_stop_list": "--stop", "chat_stop": "--stop", "chat_system": "--system"}
    r = run_raw(*args, input=b"Hello\n")
    assert_one_line_error(r, "ohai: error:", what.get(channel, "prompt"), "not valid UTF-8")
    assert r.stdout == b""


@pytest.mark.parametrize("line", [1, 2])
def test_chat_stdin_not_utf8(default_model_path: str, line: int) -> None:
    conversation = b"Hi\n" * (line - 1) + NOT_UTF8["stray_bytes"] + b"\nHello again\n"
    r = run_raw("chat", "-m", default_model_path, "-n", "2", "--temp", "0", input=conversation)
    assert_one_line_error(r, "ohai: error:", f"line {line} of standard input", "not valid UTF-8")
    assert len(r.stdout.splitlines()) == line - 1  # earlier turns were answered


def test_valid_utf8_is_not_refused(default_model_path: str) -> None:
    r = run_raw("run", "-m", default_model_path, "-n", "2", "--temp", "0", "--stop", "😀", "-",
                input="Grüße 😀 模型\r\n".encode())
    assert r.returncode == 0, r.stderr


# -- closed and unwritable standard streams -------------------------------------------------------------
@pytest.mark.parametrize(
    ("fd", "command", "status", "message"),
    [
        (0, ["run", "-n", "1"], 1, "standard input is closed"),
        (0, ["chat", "-n", "1"], 1, "standard input is closed"),
        (0, ["run", "-n", "1", "--temp", "0", "Hello"], 0, None),  # the prompt is an argument: stdin is not needed
        (1, ["run", "-n", "1", "Hello"], 1, "standard output is closed"),
        (1, ["info"], 1, "standard output is closed"),
        (1, ["--version"], 1, "standard output is closed"),
        (2, ["run", "-n", "1", "-m", "/nonexistent/model.gguf", "Hello"], 1, None),
        (2, ["run", "-n", "1", "--temp", "0", "Hello"], 0, None),  # greedy: a visible first token
        (2, ["run", "--temp", "hot", "Hello"], 1, None),  # an argparse error, with nowhere to print it
    ],
    ids=lambda v: repr(v) if not isinstance(v, list) else " ".join(v),
)
def test_closed_standard_stream(default_model_path: str, fd: int, command: list[str], status: int,
                                message: str | None) -> None:
    r = run_raw(*command, close_fd=fd, env={"OHAI_MODEL": default_model_path})
    assert r.returncode == status, r.stderr
    if fd == 2:
        assert r.stderr == b""
    elif message is not None:
        assert message in stderr_line(r)
    else:
        assert r.stderr == b""
    if fd != 1 and status == 0:
        assert r.stdout.strip()


def test_stdout_on_a_full_disk(default_model_path: str) -> None:
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "ohai", "info", "-m", default_model_path], stdout=full,
                           stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 1
    assert "No space left" in stderr_line(r)  # not also the interpreter's "Exception ignored" at exit


def test_stdout_closed_by_the_reader(default_model_path: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ohai", "run", "-m", default_model_path, "-n", "64", "--temp", "0",
                             "Tell me a long story."], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()  # like `| head -c 1`
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert err == b""


# -- environment --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["garbage", "verbose", "10", os.fsdecode(b"\xff\xfe"), "x" * 5000])
def test_bad_ohai_log_is_one_warning(value: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OHAI_LOG": value}
    r = subprocess.run([sys.executable, "-c", "import ohai; print('imported')"], capture_output=True, env=env,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0 and r.stdout == b"imported\n", r.stderr
    line = stderr_line(r)
    assert line.startswith("ohai: warning: OHAI_LOG") and len(line) < 200, line


# -- errors always exit non-zero ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["chat", "-c", "8", "-n", "4"], b"Hello there\n", "context"),  # printed, and the session went on
        (["bench", "-p", "65536"], b"", "training context"),
        (["bench", "-p", "0", "-n", "0"], b"", "nothing to measure"),
        (["run", "-n", "-1", "Hi"], b"", "max_tokens"),
        (["run", "--temp", "nan", "Hi"], b"", "temperature"),
        (["run", "--seed", "-1", "Hi"], b"", "seed"),
        (["chat", "--top-p", "0"], b"Hi\n", "top_p"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_errors_exit_non_zero(default_model_path: str, args: list[str], stdin: bytes, needle: str) -> None:
    r = run_raw(*args, input=stdin, env={"OHAI_MODEL": default_model_path}, timeout=60)
    assert_one_line_error(r, "ohai: error:", needle)


@pytest.mark.parametrize("name", [b"m\xff.gguf", "café 模型.gguf".encode()], ids=repr)
def test_model_file_name_not_utf8(tmp_path: Path, default_model_path: str, name: bytes) -> None:
    link = os.path.join(os.fsencode(tmp_path), name)
    os.symlink(os.fsencode(default_model_path), link)
    r = run_raw("info", "-m", os.fsdecode(link))
    assert r.returncode == 0, r.stderr
    path_line = r.stdout.decode().splitlines()[0]
    assert path_line.startswith("path") and path_line.endswith(name.decode("utf-8", "replace"))
    j = run_raw("info", "--json", "-m", os.fsdecode(link))
    assert j.returncode == 0, j.stderr
    assert os.fsencode(json.loads(j.stdout)["path"]) == link  # the exact file name survives JSON


# -- the last resort ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError("boom\nsecond line"), KeyError("k"), AttributeError("x"),
                                   ZeroDivisionError()], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("debug", [False, True])
def test_internal_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    error: Exception, debug: bool) -> None:
    def broken(args: object) -> int:
        raise error

    monkeypatch.setattr(ohai.cli.info, "execute", broken)
    if debug:
        monkeypatch.setenv("OHAI_DEBUG", "1")
    else:
        monkeypatch.delenv("OHAI_DEBUG", raising=False)
    assert ohai.cli.main(["info"]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ohai: internal error: {type(error).__name__}")
    assert "\n" not in last
    if debug:
        assert "Traceback" in err
    else:
        assert err.count("\n") == 1 and "Traceback" not in err
