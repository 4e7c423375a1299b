"""Cross builds for OpenHarmony, proven without the SDK or a board (docs/ohos-integration.md, "Cross-compiling").

`make cross-arm64` / `make cross-arm` build ohai with zig (clang + musl + libc++, the SDK's family) through
the same CMake path as the OpenHarmony native SDK. The results must be what a board needs (fully static
executables for the right machine, plugin libraries that export only PLUGIN_INTERFACE) and must compute
what the native build computes: run under qemu-user, greedy decoding of the default model gives the
native tokens, and where a prompt makes the two part, it is at a step where the native model itself
barely prefers its token, with every logit close to the native one up to there.

The 32-bit build is marked slow (about 4 minutes from nothing, then 2 minutes of emulation); it is part
of `make test` and is skipped only when deselected (`-m "not slow"`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import ohai
from conftest import ROOT


@dataclass(frozen=True)
class Cross:
    triple: str
    make_target: str
    qemu: str
    elf_class: str       # readelf -h "Class"
    machine: str         # readelf -h "Machine"
    file_arch: str       # what `file` says
    cpu_target: str      # OHAI_CPU_LEVEL of the Makefile's build
    features: tuple[str, ...]   # instruction sets the build must use

    @property
    def out(self) -> Path:
        return ROOT / "build" / "cross" / self.triple


ARM64 = Cross("aarch64-linux-musl", "cross-arm64", "qemu-aarch64-static", "ELF64", "AArch64", "ARM aarch64",
              "armv8.2-a+dotprod+fp16", ("neon", "dotprod", "fp16"))
ARM32 = Cross("arm-linux-musleabi", "cross-arm", "qemu-arm-static", "ELF32", "ARM", "ARM, EABI5",
              "armv7-a", ("neon", "vfpv4"))
TARGETS = [pytest.param(ARM64, id="arm64"), pytest.param(ARM32, id="arm32", marks=pytest.mark.slow)]

# How far a cross-built logit may be from the native one (top 5 of each step). Every build's kernels
# differ a little (x86: AVX-512/AVX2; arm64: NEON with dot products, FP16 arithmetic, repacked Q8_0;
# arm32: plain NEON), and requantizing activations to 8 bits before each matmul turns last-bit
# differences into whole quantization steps: over 30 layers the logits of this model (magnitudes
# 5-25) move by 0.2 on average and up to 0.9 (measured; arm64 and arm32 are as far from each other as
# from x86). An error in a kernel moves them by whole units.
LOGIT_TOLERANCE = 1.5
# A greedy prompt whose 32 native tokens each win by more than that (smallest top-2 gap 1.69 logits):
# the cross builds must give exactly these tokens.
EXACT_PROMPTS = [("1, 2, 3, 4, 5,", False)]
# Prompts where the native model has near-ties (top-2 gaps of 0.02-0.15 logits; the chat one 0.94):
# the builds may part there, and only where the native gap is below NEAR_TIE_GAP.
NEAR_TIE_PROMPTS = [("Once upon a time", False), ("def fibonacci(n):", False),
                    ("What is the capital of France? Answer in one sentence.", True)]
NEAR_TIE_GAP = 1.0


def _built(cross: Cross) -> Cross:
    """`make <cross-target>` (incremental: seconds when nothing changed), once per session and target."""
    if cross.triple not in _BUILT:
        r = subprocess.run(["make", "--no-print-directory", cross.make_target], cwd=ROOT, capture_output=True,
                           text=True, timeout=3600)
        assert r.returncode == 0, f"make {cross.make_target} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        _BUILT.add(cross.triple)
    return cross


_BUILT: set[str] = set()


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is needed (Debian: {package}; .ci/run installs it)")
    return found


def _readelf(*args: str) -> str:
    return subprocess.run([_tool("readelf", "binutils"), *args], capture_output=True, text=True, check=True).stdout


def _emulated_env(cross: Cross, home: Path) -> dict[str, str]:
    """OHAI_HOME in a temporary folder, and ohai-isolate run under qemu too: the engine spawns the helper
    with posix_spawn, which qemu-user passes to the host kernel, so a small host script starts qemu."""
    isolate = home / "ohai-isolate"
    isolate.write_text(f'#!/bin/sh\necho "$@" >> "{home}/isolate-calls"\n'
                       f'exec {_tool(cross.qemu, "qemu-user-static")} {cross.out / "ohai-isolate"} "$@"\n')
    isolate.chmod(0o755)
    return {**os.environ, "OHAI_HOME": str(home), "OHAI_ISOLATE": str(isolate)}


def _run(cross: Cross, binary: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool(cross.qemu, "qemu-user-static"), str(binary), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def native_model(default_model_path: str):
    with ohai.Model(default_model_path, n_ctx=2048, threads=2) as m:   # as ohai-greedy-logits
        yield m


@pytest.mark.parametrize("cross", TARGETS)
def test_executables_are_static_for_the_target_machine(cross: Cross) -> None:
    c = _built(cross)
    file_tool = _tool("file", "file")
    for name in ("ohai-cli", "ohai-isolate"):
        binary = c.out / name
        described = subprocess.run([file_tool, "-b", str(binary)], capture_output=True, text=True,
                                   check=True).stdout
        assert "statically linked" in described and c.file_arch in described, described
        header = _readelf("-h", str(binary))
        assert re.search(rf"Class:\s+{c.elf_class}\b", header) and re.search(rf"Machine:\s+{c.machine}\b", header), header
        assert "EXEC" in header   # not a PIE that needs a loader
        programs = _readelf("-lW", str(binary))
        assert "INTERP" not in programs and "DYNAMIC" not in programs, programs
        assert _readelf("-d", str(binary)).strip().endswith("There is no dynamic section in this file.")


@pytest.mark.parametrize("cross", TARGETS)
def test_plugin_libraries_export_only_the_plugin_interface(cross: Cross) -> None:
    c = _built(cross)
    nm = _tool("nm", "binutils")
    for name in ("libohai_llm.so", "libohai_llm_sync.so"):
        library = c.out / name
        header = _readelf("-h", str(library))
        assert "DYN" in header and re.search(rf"Machine:\s+{c.machine}\b", header), header
        defined = subprocess.run([nm, "-D", "--defined-only", str(library)], capture_output=True, text=True,
                                 check=True).stdout.split()
        assert [s for s in defined if not re.fullmatch(r"[0-9a-f]+|[A-Za-z]", s)] == ["PLUGIN_INTERFACE"], defined
        undefined = subprocess.run([nm, "-D", "--undefined-only", str(library)], capture_output=True, text=True,
                                   check=True).stdout
        # The data channel comes from the hosting process (ai_engine's server).
        assert "_ZN4OHOS2AI" in undefined, undefined
        # libc++ is inside: the only library needed is the C library.
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", _readelf("-d", str(library)))
        assert needed == ["libc.so"], needed


@pytest.mark.parametrize("cross", TARGETS)
def test_openharmony_musl_adjustments_are_compiled_in(cross: Cross) -> None:
    """cmake/cross.cmake, as an SDK build gets it: the zig builds are configured as OHOS, so _GNU_SOURCE
    is ours (llama.cpp adds it for Linux only), and `make cross` forces the affinity shim, so ggml-cpu
    calls ohai_pthread_setaffinity_np where an OpenHarmony musl without pthread_setaffinity_np has none."""
    c = _built(cross)
    build = c.out / "build"
    system = next(build.glob("CMakeFiles/*/CMakeSystem.cmake")).read_text()
    assert 'set(CMAKE_SYSTEM_NAME "OHOS")' in system, system
    obj = next(build.glob("llama.cpp/ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu/ggml-cpu.c.o"))
    symbols = subprocess.run([_tool("nm", "binutils"), "-u", str(obj)], capture_output=True, text=True,
                             check=True).stdout.split()
    assert "ohai_pthread_setaffinity_np" in symbols and "pthread_setaffinity_np" not in symbols, symbols


@pytest.mark.slow
def test_32_bit_code_keeps_the_soft_float_calling_convention() -> None:
    """OpenHarmony's armeabi-v7a passes floats in core registers (softfp). The plugin libraries call the
    image's libc, so a hard-float build would hand it floats in VFP registers: wrong values, no error.
    The code itself still uses NEON with VFPv4. Checked on every object of ours (the linker keeps only
    the first input's attributes in a linked file, which is zig's C runtime)."""
    c = _built(ARM32)
    build = c.out / "build"
    archives = sorted(build.rglob("*.a"))
    assert {a.name for a in archives} >= {"libggml-cpu.a", "libggml-base.a", "libllama.a", "libohai_engine.a"}
    for archive in archives:
        attributes = _readelf("-A", str(archive))
        assert "Tag_ABI_VFP_args: VFP registers" not in attributes, archive.name
        assert "Tag_FP_arch: VFPv4" in attributes, archive.name
    assert "Tag_Advanced_SIMD_arch: NEONv1 with Fused-MAC" in _readelf("-A", str(build / "llama.cpp" / "ggml" / "src" /
                                                                                    "libggml-cpu.a"))
    for name in ("ohai-cli", "ohai-isolate", "libohai_llm.so", "libohai_llm_sync.so"):
        assert "Tag_ABI_VFP_args: VFP registers" not in _readelf("-A", str(c.out / name)), name
    cache = (build / "CMakeCache.txt").read_text()
    # The soft-float target made cmake/cpu_target.cmake add -mfloat-abi=softfp, as in an SDK build.
    assert re.search(r"^OHAI_ARM_FP_ABI_ALLOWS_FPU:INTERNAL=$", cache, re.M), "the target is not soft-float"


def test_arm64_build_explains_a_cpu_it_cannot_use(default_model_path: str, tmp_path: Path) -> None:
    """The kernels use the Cortex-A55's dot products and FP16 arithmetic; an ARMv8.0 core (Cortex-A53)
    has neither. Everything but the kernels is ARMv8.0 code, so there the build says so and exits,
    instead of dying on an illegal instruction."""
    c = _built(ARM64)
    env = _emulated_env(c, tmp_path)
    qemu = _tool(c.qemu, "qemu-user-static")
    r = subprocess.run([qemu, "-cpu", "cortex-a53", str(c.out / "ohai-cli"), "--info"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    system = json.loads(r.stdout)["system"]
    assert sorted(system["missing"]) == ["dotprod", "fp16"], system
    r = subprocess.run([qemu, "-cpu", "cortex-a53", str(c.out / "ohai-cli"), "-m", default_model_path,
                        "-p", "hi", "-n", "2"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "uses CPU instructions this machine lacks (" in r.stderr and "dotprod" in r.stderr, r.stderr
    assert "OHAI_CPU_LEVEL=armv8-a" in r.stderr, r.stderr


@pytest.mark.slow
def test_32_bit_build_runs_on_a_cortex_a7(tmp_path: Path) -> None:
    """NEON with VFPv4 is what every Cortex-A7 offers: the oldest core of a 32-bit OpenHarmony board."""
    c = _built(ARM32)
    r = subprocess.run([_tool(c.qemu, "qemu-user-static"), "-cpu", "cortex-a7", str(c.out / "ohai-cli"), "--info"],
                       capture_output=True, text=True, timeout=300, env=_emulated_env(c, tmp_path))
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert json.loads(r.stdout)["system"]["missing"] == []


def _configure_arm64(build: Path, *options: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """A CMake configure (no build) of the project with the arm64 zig toolchain, as an SDK build would run it."""
    venv_bin = str(ROOT / ".venv" / "bin")
    cmake = shutil.which("cmake", path=venv_bin) or _tool("cmake", "cmake")
    return subprocess.run([cmake, "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
                           f"-DCMAKE_MAKE_PROGRAM={shutil.which('ninja', path=venv_bin) or 'ninja'}",
                           f"-DCMAKE_TOOLCHAIN_FILE={ROOT}/cmake/toolchains/zig-aarch64-linux-musl.cmake",
                           "-DOHAI_FETCH_LLAMA_CPP=OFF", *options],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_sdk_builds_detect_pthread_setaffinity_np(tmp_path: Path) -> None:
    """OHAI_AFFINITY_SHIM=AUTO, an SDK build's default (the Makefile forces ON): configured as OHOS
    against a musl that has pthread_setaffinity_np, the shim stays out."""
    build = tmp_path / "b"
    r = _configure_arm64(build, "-DOHAI_AFFINITY_SHIM=AUTO")
    assert r.returncode == 0, r.stderr[-3000:]
    cache = (build / "CMakeCache.txt").read_text()
    assert re.search(r"^OHAI_HAVE_PTHREAD_SETAFFINITY_NP:INTERNAL=1$", cache, re.M), "symbol not detected"
    assert "pins threads through sched_setaffinity" not in r.stdout, r.stdout[-3000:]
    assert re.search(r"^GGML_OPENMP:BOOL=OFF$", cache, re.M)   # ggml's thread pool, whatever the toolchain


def test_cross_builds_refuse_native_tuning(tmp_path: Path) -> None:
    r = _configure_arm64(tmp_path / "b", "-DOHAI_NATIVE=ON", timeout=600)
    assert r.returncode != 0 and "a cross build needs OHAI_NATIVE=OFF" in " ".join(r.stderr.split()), r.stderr[-2000:]


@pytest.mark.parametrize("cross", TARGETS)
def test_help_and_info_run_under_emulation(cross: Cross, default_model_path: str, native_model: ohai.Model,
                                           tmp_path: Path) -> None:
    c = _built(cross)
    env = _emulated_env(c, tmp_path)
    r = _run(c, c.out / "ohai-cli", "--help", env=env)
    assert r.returncode == 0 and r.stdout.startswith("usage: ohai-cli"), r
    r = _run(c, c.out / "ohai-cli", "--info", "-m", default_model_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout)
    system = info["system"]
    assert system["cpu_target"] == c.cpu_target and system["missing"] == []
    for feature in c.features:
        assert system["features"][feature] == {"built": True, "supported": True, "used": True}, feature
    assert system["llama_system_info"].startswith("CPU : NEON = 1")
    assert info["model"]["arch"] == native_model.info.arch and info["model"]["n_vocab"] == native_model.info.n_vocab
    # The model was probed by the cross-built ohai-isolate, under emulation too.
    assert (tmp_path / "isolate-calls").read_text().startswith("probe "), "ohai-isolate did not run"
    assert any((tmp_path / "probed").iterdir())
    # Without a model, --info runs no kernel: it is what tells a user why a board refuses the build.
    r = _run(c, c.out / "ohai-cli", "--info", env=env)
    assert r.returncode == 0 and "model" not in json.loads(r.stdout)


@pytest.mark.parametrize("cross", TARGETS)
@pytest.mark.parametrize("prompt, chat", EXACT_PROMPTS)
def test_greedy_text_equals_the_native_build(cross: Cross, prompt: str, chat: bool, ohai_cli_bin: str,
                                              default_model_path: str, tmp_path: Path) -> None:
    c = _built(cross)
    args = ["-m", default_model_path, "-p", prompt, "-n", "32", "--temp", "0", "--json", "-t", "2"]
    args += ["--chat"] if chat else []
    native = subprocess.run([ohai_cli_bin, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OHAI_HOME": str(tmp_path / "native")})
    assert native.returncode == 0, native.stderr[-2000:]
    emulated = _run(c, c.out / "ohai-cli", *args, env=_emulated_env(c, tmp_path))
    assert emulated.returncode == 0, emulated.stderr[-2000:]
    want, got = json.loads(native.stdout), json.loads(emulated.stdout)
    assert got["text"] == want["text"]
    assert got["usage"] == want["usage"] and got["finish_reason"] == want["finish_reason"]


def _native_greedy(model: ohai.Model, prompt: str, chat: bool) -> tuple[list[int], list[int], np.ndarray]:
    text = model.apply_chat_template([{"role": "user", "content": prompt}]) if chat else prompt
    completion = model.generate(text, max_tokens=32, temperature=0)
    prompt_tokens = model.tokenize(text, parse_special=True)
    logits = model.logits(prompt_tokens + completion.tokens, prompt_tokens=len(prompt_tokens))
    return prompt_tokens, completion.tokens, logits[len(prompt_tokens) - 1:]


# arm64 with every prompt; the slower 32-bit emulation with the exact prompt and one near-tie.
LOGIT_CASES = ([pytest.param(ARM64, prompt, chat, id=f"arm64-{prompt[:16]}-{chat}")
                for prompt, chat in EXACT_PROMPTS + NEAR_TIE_PROMPTS] +
               [pytest.param(ARM32, prompt, chat, id=f"arm32-{prompt[:16]}-{chat}", marks=pytest.mark.slow)
                for prompt, chat in EXACT_PROMPTS + NEAR_TIE_PROMPTS[:1]])


@pytest.mark.parametrize("cross, prompt, chat", LOGIT_CASES)
def test_greedy_tokens_and_logits_follow_the_native_build(cross: Cross, prompt: str, chat: bool,
                                                          native_model: ohai.Model, default_model_path: str,
                                                          tmp_path: Path) -> None:
    """Token by token: the same tokens as the native build, every top-5 logit within LOGIT_TOLERANCE of
    the native one, and a first divergence (allowed on the near-tie prompts only) exactly where the
    native model's own margin is below that tolerance."""
    c = _built(cross)
    prompt_tokens, tokens, logits = _native_greedy(native_model, prompt, chat)
    tool = c.out / "build" / "tests" / "cross" / "ohai-greedy-logits"
    r = _run(c, tool, default_model_path, prompt, "32", *(["--chat"] if chat else []),
             env={**os.environ, "OHAI_HOME": str(tmp_path), "OHAI_PROBE": "0"})
    assert r.returncode == 0, r.stderr[-2000:]
    emulated = json.loads(r.stdout)
    assert emulated["prompt_tokens"] == prompt_tokens
    same = 0
    while same < min(len(tokens), len(emulated["tokens"])) and tokens[same] == emulated["tokens"][same]:
        same += 1
    for step in range(min(same + 1, len(emulated["top"]), len(tokens))):
        for token, logit in emulated["top"][step]:
            assert abs(logit - float(logits[step][token])) <= LOGIT_TOLERANCE, (step, token, logit)
    if same == len(tokens) == len(emulated["tokens"]):
        return
    assert (prompt, chat) in NEAR_TIE_PROMPTS, f"{c.triple} parts from the native tokens at step {same}"
    assert same < len(tokens) and same < len(emulated["tokens"]), (
        f"{c.triple} stops at step {len(emulated['tokens'])}, the native build at {len(tokens)}")
    row = logits[same]
    # From the native one-batch logits, while the native tokens come from step-by-step decoding: the two
    # can rank a near-tie differently (by up to 0.3 measured), hence the absolute value.
    native_gap = float(row[tokens[same]] - row[emulated["tokens"][same]])
    assert abs(native_gap) < NEAR_TIE_GAP, (same, native_gap)
