#!/usr/bin/env python3
"""Build llama.cpp's own tools (llama-bench, llama-server, ...) from the pinned tree.

The benchmarks compare ohai with the reference programs built from the *same*
llama.cpp tree (`third_party/llama.cpp`) and with the *same* CPU flags as ohai's
default build (`cmake/cpu_target.cmake`): tuned for this machine (GGML_NATIVE=ON,
i.e. -march=native), minus Intel AMX on x86 unless the environment says
OHAI_AMX=ON. Some virtual machines advertise AMX and then fault on tile
instructions, so a plain native llama.cpp build dies with SIGILL on the first
prompt batch there, while ohai (AMX compiled out) runs.

One build directory (default `build/llama-tools`, git-ignored) holds every tool:
it is configured once (again only when the options change), built incrementally
with Ninja, through ccache when installed. No network is needed: the server's
web UI is neither built with npm nor downloaded (LLAMA_BUILD_UI=OFF,
LLAMA_USE_PREBUILT_UI=OFF), so llama-server is built without an embedded UI.

As a module:    `build_tools(["llama-server"])` -> {"llama-server": Path}
As a script:    `python benchmarks/llama_tools.py llama-bench llama-server [-j N] [--check-amx]`
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_TREE = ROOT / "third_party" / "llama.cpp"
FETCH_SCRIPT = ROOT / "scripts" / "fetch_llama_cpp.py"
DEFAULT_BUILD_DIR = ROOT / "build" / "llama-tools"
TOOLS = ("llama-bench", "llama-server")  # the targets the benchmarks use; any target name works
NO_AMX_FLAGS = ("-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16")
STAMP_NAME = "ohai-configure-args.txt"
TAIL_LINES = 30
# CMake's true constants (case-insensitive); non-zero numbers are true as well.
_CMAKE_TRUE = {"1", "on", "yes", "true", "y"}

Log = Callable[[str], None]


class LlamaToolsError(RuntimeError):
    """A tool could not be built; the message says why (with the tail of the tool's output)."""


def _default_log(msg: str) -> None:
    print(f"llama_tools: {msg}", file=sys.stderr, flush=True)


def _tail(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-n:])


def _run(cmd: Sequence[str], what: str) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LlamaToolsError(f"{what}: executable not found: {cmd[0]}") from None
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip() or "(no output)"
        raise LlamaToolsError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{_tail(out)}")
    return proc.stdout


# --------------------------------------------------------------------------- the pinned tree

def last_json_document(stdout: str) -> object:
    """The JSON document a tool printed last (llama-bench, `ohai bench --json`, ohai-cli --json).

    Log lines before it are tolerated; raises ValueError when there is none."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Try each line that could start the document, from the end.
    decoder = json.JSONDecoder()
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith(("{", "[")):
            try:
                return decoder.raw_decode("\n".join(lines[i:]).lstrip())[0]
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON found in the output")


def ensure_llama_tree(log: Log = _default_log) -> None:
    """Fetch the pinned llama.cpp tree with scripts/fetch_llama_cpp.py when it is missing."""
    if (LLAMA_TREE / "OHAI_PINNED").exists():
        return
    log("pinned llama.cpp tree missing, fetching it")
    _run([sys.executable, str(FETCH_SCRIPT), "--dest", str(LLAMA_TREE)], "fetch_llama_cpp.py")
    if not (LLAMA_TREE / "OHAI_PINNED").exists():
        raise LlamaToolsError(f"fetch_llama_cpp.py did not produce {LLAMA_TREE}")


def pinned_info() -> tuple[str, str]:
    """(whole OHAI_PINNED line, llama.cpp build id)."""
    line = (LLAMA_TREE / "OHAI_PINNED").read_text().strip()
    build = next((w.split("=", 1)[1] for w in line.split() if w.startswith("build=")), "unknown")
    return line, build


# --------------------------------------------------------------------------- CPU flags

def cpu_family(machine: str | None = None) -> str:
    m = (machine or platform.machine()).lower()
    if m in ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"):
        return "x86"
    if m.startswith(("aarch64", "arm")):
        return "arm"
    return "other"


def amx_enabled(env: Mapping[str, str] | None = None) -> bool:
    """OHAI_AMX from the environment, read as CMake reads the ohai build's option (default OFF)."""
    value = (os.environ if env is None else env).get("OHAI_AMX", "").strip().lower()
    if value in _CMAKE_TRUE:
        return True
    try:
        return float(value) != 0
    except ValueError:
        return False


def cpu_flags(env: Mapping[str, str] | None = None, machine: str | None = None) -> list[str]:
    """Extra C/C++ flags matching ohai's native build: AMX off on x86 unless OHAI_AMX=ON.

    GGML_NATIVE=ON adds -march=native to ggml-cpu; an explicit -mno-amx-* wins over
    -march=native whatever their order on the command line, so CMAKE_C(XX)_FLAGS is enough.
    """
    if cpu_family(machine) == "x86" and not amx_enabled(env):
        return list(NO_AMX_FLAGS)
    return []


def cmake_args(build_id: str, env: Mapping[str, str] | None = None) -> list[str]:
    flags = " ".join(cpu_flags(env))
    args = [
        "-G", "Ninja",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGGML_NATIVE=ON",            # like ohai's default local build (OHAI_NATIVE=ON)
        f"-DCMAKE_C_FLAGS={flags}",    # ... minus AMX, like cmake/cpu_target.cmake
        f"-DCMAKE_CXX_FLAGS={flags}",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_CURL=OFF",            # deprecated and ignored in this version; harmless
        "-DLLAMA_OPENSSL=OFF",         # loopback http only
        "-DLLAMA_BUILD_COMMON=ON",     # the tools link llama-common
        "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_SERVER=ON",     # adds tools/server (and tools/ui, tools/cli)
        "-DLLAMA_BUILD_UI=OFF",        # no npm build of the web UI ...
        "-DLLAMA_USE_PREBUILT_UI=OFF",  # ... and no download of a prebuilt one: builds offline
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_APP=OFF",
        "-DLLAMA_ALL_WARNINGS=OFF",
        # The tree is not a git checkout: give the tools the pinned build id
        # instead of letting them guess from the surrounding repository.
        "-DLLAMA_BUILD_NUMBER=0",
        f"-DLLAMA_BUILD_COMMIT={build_id}",
    ]
    ccache = shutil.which("ccache")
    if ccache:
        args += [f"-DCMAKE_C_COMPILER_LAUNCHER={ccache}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={ccache}"]
    return args


# --------------------------------------------------------------------------- build

def configure(build_dir: Path = DEFAULT_BUILD_DIR, log: Log = _default_log) -> list[str]:
    """Configure `build_dir` unless it already is with the same options; returns the options."""
    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            raise LlamaToolsError(f"`{tool}` is not on PATH; it is needed to build llama.cpp's tools")
    ensure_llama_tree(log)
    _, build_id = pinned_info()
    args = cmake_args(build_id)
    # Ninja re-runs CMake itself when the tree's CMakeLists change, so the stamp
    # only has to catch changes of our options (e.g. OHAI_AMX, ccache appearing).
    stamp = build_dir / STAMP_NAME
    wanted = "\n".join(args) + "\n"
    if (build_dir / "build.ninja").exists() and stamp.exists() and stamp.read_text() == wanted:
        return args
    log(f"configuring llama.cpp tools in {build_dir} (extra CPU flags: {' '.join(cpu_flags()) or 'none'})")
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)  # a failed configure must not look current next time
    _run(["cmake", "-S", str(LLAMA_TREE), "-B", str(build_dir), *args], "cmake configure")
    stamp.write_text(wanted)
    return args


def build_tools(targets: Iterable[str] = TOOLS, build_dir: Path = DEFAULT_BUILD_DIR,
                jobs: int | None = None, log: Log = _default_log) -> dict[str, Path]:
    """Build the named targets (incrementally) and return {target: path of its executable}."""
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise LlamaToolsError("no target to build")
    build_dir = build_dir.resolve()
    configure(build_dir, log)
    log(f"building {', '.join(targets)} in {build_dir} "
        "(the first build takes several minutes; later ones are incremental)")
    cmd = ["cmake", "--build", str(build_dir), "--target", *targets]
    if jobs:
        cmd += ["-j", str(jobs)]
    _run(cmd, "llama.cpp tools build")
    paths: dict[str, Path] = {}
    for t in targets:
        binary = build_dir / "bin" / t
        if not binary.is_file():
            raise LlamaToolsError(f"build finished but {binary} does not exist")
        paths[t] = binary
    return paths


def build_tool(target: str, build_dir: Path = DEFAULT_BUILD_DIR, jobs: int | None = None,
               log: Log = _default_log) -> Path:
    return build_tools([target], build_dir, jobs, log)[target]


def amx_instruction_count(binary: Path) -> int | None:
    """Number of AMX tile instructions in `binary` (objdump), None when objdump is missing."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return None
    out = _run([objdump, "-d", "--no-show-raw-insn", str(binary)], "objdump")
    mnemonics = ("ldtilecfg", "sttilecfg", "tileloadd", "tilestored", "tilezero", "tdpb", "tdpfp16", "tilerelease")
    return sum(1 for line in out.splitlines() if any(f"\t{m}" in line for m in mnemonics))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", default=list(TOOLS), help=f"targets to build (default: {' '.join(TOOLS)})")
    ap.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    ap.add_argument("-j", "--jobs", type=int, help="parallel build jobs")
    ap.add_argument("--check-amx", action="store_true",
                    help="count AMX instructions in the built executables (objdump)")
    a = ap.parse_args(argv)
    try:
        paths = build_tools(a.targets, a.build_dir, a.jobs)
        for target, path in paths.items():
            line = f"{target}\t{path}"
            if a.check_amx:
                n = amx_instruction_count(path)
                line += "\tAMX instructions: " + ("? (no objdump)" if n is None else str(n))
            print(line)
    except LlamaToolsError as e:
        sys.exit(f"llama_tools: error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
