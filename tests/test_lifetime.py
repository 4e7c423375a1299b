"""Process lifetime: interpreter exit with threads inside the engine, fork(), and use_mmap=False.

Each case runs in a subprocess with a timeout, so that a crash is a failed assertion and a hang
a timeout, never a broken or stuck test session.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import ohai

ROOT = Path(__file__).resolve().parent.parent


def run_script(source: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # The checkout first on the path: the same `ohai` package the test session imports.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("OHAI_LOG", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))


# -- interpreter exit while daemon threads are inside the engine ------------------------------

EXIT_WHILE_BUSY = """
import sys, threading, time
import ohai

path, kinds, delay, code = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), int(sys.argv[4])
model = ohai.Model(path, n_ctx=512, threads=1)
ready = threading.Barrier(len(kinds) + 1)

def work(kind):
    ready.wait()
    while True:
        if kind == "generate":
            model.generate("Once upon a time", max_tokens=200, temperature=0)
        elif kind == "stream":
            for _ in model.stream("Once upon a time", max_tokens=200, temperature=0):
                pass
        elif kind == "chat":
            for _ in model.chat([{"role": "user", "content": "Tell me a story"}], stream=True, max_tokens=200):
                pass
        elif kind == "embed":
            model.embed(["hello world " * 50] * 4)
        elif kind == "logits":
            model.logits(list(range(100, 300)), prompt_tokens=1)
        elif kind == "bench":
            model.bench(n_prompt=64, n_gen=32, repetitions=50, threads=1)

for kind in kinds:
    threading.Thread(target=work, args=(kind,), daemon=True).start()
ready.wait()
time.sleep(delay)
if code:
    sys.exit(code)
"""

EXIT_CASES = [
    ("generate", 0.0, 0),
    ("stream", 0.2, 3),
    ("embed", 0.3, 0),
    ("bench", 0.5, 0),
    ("generate,stream,embed", 0.4, 5),
    ("stream,embed", 0.05, 0),
    ("generate,generate", 0.3, 0),
    ("bench,stream", 1.0, 2),
    ("chat,logits", 0.2, 0),
    ("stream", 0.7, 0),
]


@pytest.mark.parametrize(("kinds", "delay", "code"), EXIT_CASES, ids=[f"{k}-{d}" for k, d, _ in EXIT_CASES])
def test_exit_with_daemon_threads_inside_the_engine(default_model_path: str, kinds: str, delay: float,
                                                    code: int) -> None:
    # Before the fix: "terminate called without an active exception" + SIGABRT, or SIGSEGV.
    r = run_script(EXIT_WHILE_BUSY, default_model_path, kinds, str(delay), str(code))
    assert r.returncode == code, f"exit code {r.returncode}, stderr:\n{r.stderr}"
    assert r.stderr == ""


def test_close_stops_a_running_logits_call(model: ohai.Model) -> None:
    # A long token-by-token logits call is a task on the worker: closing aborts it, it does not run to its end.
    m = ohai.Model(model.info.path, n_ctx=2048, threads=1)
    m.logits([1, 2])   # the engine exists
    errors: list[BaseException] = []

    def run() -> None:
        try:
            m.logits(list(range(100, 1900)), prompt_tokens=1)
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    m.close()
    t.join(timeout=30)
    assert not t.is_alive()
    assert time.monotonic() - started < 5
    assert len(errors) == 1 and isinstance(errors[0], ohai.OhaiError), errors
    assert "closed" in str(errors[0])


# -- fork() -----------------------------------------------------------------------------------

FORK_CHILD = """
import gc, os, sys, threading, warnings
import ohai

warnings.simplefilter("ignore", DeprecationWarning)   # Python 3.12+: "use of fork() may lead to deadlocks"

path = sys.argv[1]
model = ohai.Model(path, n_ctx=512, threads=2)
expected = model.generate("Hello", max_tokens=8, temperature=0).text
lazy = ohai.Model(path, n_ctx=512, threads=2)   # its engine does not exist yet at the fork

# A stream being read by another thread at the moment of the fork.
stream = model.stream("Once upon a time", max_tokens=400, temperature=0)
reading = threading.Event()
def read():
    for _ in stream:
        reading.set()
threading.Thread(target=read, daemon=True).start()
reading.wait()

pid = os.fork()
if pid == 0:
    failures = []
    calls = {
        "generate": lambda: model.generate("Hello", max_tokens=4),
        "stream": lambda: list(model.stream("Hello", max_tokens=4)),
        "chat": lambda: model.chat([{"role": "user", "content": "hi"}], max_tokens=4),
        "embed": lambda: model.embed("hi"),
        "logits": lambda: model.logits([1, 2, 3]),
        "parent stream": lambda: next(stream),
    }
    for name, call in calls.items():
        try:
            call()
            failures.append(name + ": no error")
        except ohai.OhaiError as e:
            if "fork()" not in str(e):
                failures.append(name + ": " + str(e))
    if model.tokenize("hi") != lazy.tokenize("hi"):
        failures.append("tokenize")
    if lazy.generate("Hello", max_tokens=8, temperature=0).text != expected:
        failures.append("a model whose engine did not exist at the fork")
    fresh = ohai.Model(path, n_ctx=512, threads=2)
    if fresh.generate("Hello", max_tokens=8, temperature=0).text != expected:
        failures.append("a new model in the child")
    if len(fresh.bench(n_prompt=16, n_gen=4, repetitions=1, threads=2)) != 2:
        failures.append("bench in the child")
    model.close()
    del stream, model
    gc.collect()
    print("\\n".join(failures) or "child ok", flush=True)
    sys.exit(1 if failures else 0)

_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
stream.close()
assert model.generate("Hello", max_tokens=8, temperature=0).text == expected   # the parent is unharmed
print("parent ok", flush=True)
"""


def test_fork_child_refuses_the_parents_engine_and_runs_new_ones(default_model_path: str) -> None:
    r = run_script(FORK_CHILD, default_model_path, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == ["child", "ok", "child", "exit", "0", "parent", "ok"], r.stdout + r.stderr
    assert r.stderr == ""


MULTIPROCESSING_FORK = """
import multiprocessing, sys
import ohai

path = sys.argv[1]
model = ohai.Model(path, n_ctx=512, threads=2)
expected = model.generate("Hello", max_tokens=8, temperature=0).text

def with_parent_model(prompt):
    return model.generate(prompt, max_tokens=8, temperature=0).text

worker_model = None
def load():
    global worker_model
    worker_model = ohai.Model(path, n_ctx=512, threads=1)

def with_own_model(prompt):
    return worker_model.generate(prompt, max_tokens=8, temperature=0).text

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        try:
            pool.map(with_parent_model, ["Hello"] * 2)
            print("no error")
        except ohai.OhaiError as e:
            print("refused" if "fork()" in str(e) else "wrong error: " + str(e))
    with ctx.Pool(2, initializer=load) as pool:
        print("own models ok" if pool.map(with_own_model, ["Hello"] * 4) == [expected] * 4 else "wrong text")
"""


def test_multiprocessing_fork_start_method(default_model_path: str, tmp_path: Path) -> None:
    # multiprocessing pickles the worker functions by name: they must live in an importable file.
    script = tmp_path / "mp_fork.py"
    script.write_text(MULTIPROCESSING_FORK)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(script), default_model_path], capture_output=True, text=True,
                       timeout=180, env=env, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["refused", "own models ok"], r.stdout + r.stderr


# -- use_mmap=False -----------------------------------------------------------------------------

NO_MMAP = """
import os, sys
import ohai

path, expected = sys.argv[1], sys.argv[2]
model = ohai.Model(path, n_ctx=512, threads=2, use_mmap=False)
assert model.generate("Hello", max_tokens=8, temperature=0).text == expected
os.truncate(path, 4096)   # what a half-finished copy or download over the file would do
assert model.generate("Hello", max_tokens=8, temperature=0).text == expected
assert model.embed("hello").shape == (model.info.n_embd,)
print("ok")
"""


def test_use_mmap_false_survives_truncating_the_file(model: ohai.Model, default_model_path: str,
                                                     tmp_path: Path) -> None:
    expected = model.generate("Hello", max_tokens=8, temperature=0).text
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(default_model_path, copy)
    r = run_script(NO_MMAP, str(copy), expected)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_use_mmap_is_a_flag(default_model_path: str) -> None:
    with pytest.raises(ohai.InvalidRequestError):
        ohai.Model(default_model_path, use_mmap="no")  # type: ignore[arg-type]
