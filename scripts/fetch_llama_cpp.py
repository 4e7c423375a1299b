#!/usr/bin/env python3
"""Fetch the pinned llama.cpp tree.

llama.cpp is taken from the PyPI sdist of llama-cpp-python, which vendors a
fixed llama.cpp build.  Only `vendor/llama.cpp` is extracted, into a git-ignored
folder, after the sdist's sha256 has been checked.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_BUILD = "0c1e570"
PREFIX = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "third_party" / "llama.cpp"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def interpreter_env() -> dict[str, str]:
    """The environment for running pip with this interpreter. Inside pip's isolated build
    environment (`pip install .` configuring CMake) PYTHONPATH hides the interpreter's own
    site-packages, and with them pip itself; without it they are visible again."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONSAFEPATH"):
        env.pop(key, None)
    return env


def importable(module: str, env: dict[str, str]) -> bool:
    probe = [sys.executable, "-c", f"import {module}"]
    return subprocess.run(probe, env=env, capture_output=True).returncode == 0


def download_sdist(workdir: Path) -> Path:
    env = interpreter_env()
    if not importable("pip", env):
        raise SystemExit(f"fetch_llama_cpp: {sys.executable} has no pip; install pip or run this script "
                         "with a Python that has it")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--no-binary", PACKAGE, "--dest", str(workdir), f"{PACKAGE}=={VERSION}"]
    # pip prepares the sdist's metadata; in isolation it first installs a build backend.
    # Reuse an installed scikit-build-core when there is one.
    if importable("scikit_build_core", env):
        cmd.insert(4, "--no-build-isolation")
    subprocess.run(cmd, check=True, env=env)
    found = sorted(workdir.glob("llama_cpp_python-*.tar.gz"))
    if not found:
        raise SystemExit(f"fetch_llama_cpp: pip did not produce the {PACKAGE} sdist")
    return found[0]


def extract_tree(sdist: Path, dest: Path) -> None:
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(sdist, "r:gz") as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(PREFIX) or m.name == PREFIX:
                continue
            m.name = m.name[len(PREFIX):]
            members.append(m)
        tar.extractall(staging, members=members, filter="data")
    (staging / "OHAI_PINNED").write_text(f"{PACKAGE}=={VERSION} sha256={SDIST_SHA256} build={LLAMA_BUILD}\n")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    ap.add_argument("--sdist", type=Path, help="use this already downloaded sdist")
    ap.add_argument("--force", action="store_true", help="replace an existing tree")
    args = ap.parse_args()

    dest: Path = args.dest.resolve()
    if (dest / "OHAI_PINNED").exists() and not args.force:
        print(f"fetch_llama_cpp: {dest} already holds the pinned tree")
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ohai-llama-") as tmp:
        sdist = args.sdist or download_sdist(Path(tmp))
        digest = sha256_of(sdist)
        if digest != SDIST_SHA256:
            print(f"fetch_llama_cpp: sha256 mismatch for {sdist.name}: got {digest}, want {SDIST_SHA256}",
                  file=sys.stderr)
            return 1
        extract_tree(sdist, dest)
    print(f"fetch_llama_cpp: llama.cpp {LLAMA_BUILD} extracted to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
