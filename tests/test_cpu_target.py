"""The CPU code of a build never executes an instruction the machine cannot run (issue: SIGILL on
Intel Xeons that advertise AMX): AMX stays out of builds unless opted in, portable levels compile to
what they promise, and a build refuses to start on a CPU that lacks what it uses."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ohai
from conftest import ROOT, run_ohai

# AMX tile instructions, as objdump names them.
AMX = re.compile(r"\s(ldtilecfg|sttilecfg|tilerelease|tilezero|tileloadd|tileloaddt1|tilestored|"
                 r"tdpb[su][su]d|tdpbf16ps|tdpfp16ps)\s")
LLAMA_DIR = ROOT / "third_party" / "llama.cpp"


def _binaries(ohai_cli_bin: str) -> list[Path]:
    core = Path(ohai._core.__file__)
    return [core, Path(ohai_cli_bin), core.parent / "ohai-isolate"]


def _amx_instructions(binary: Path) -> list[str]:
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.fail("objdump (binutils) is needed to inspect the build")
    listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    return sorted({m.group(1) for m in AMX.finditer(listing)})


def test_no_amx_instructions_without_the_opt_in(ohai_cli_bin: str) -> None:
    info = ohai.system_info()
    for binary in _binaries(ohai_cli_bin):
        assert binary.exists(), binary
        found = _amx_instructions(binary)
        if info["amx_enabled"]:
            continue  # OHAI_AMX=ON: the user asked for them
        assert found == [], f"{binary.name} contains AMX instructions {found} although OHAI_AMX is off"


def test_amx_pattern_finds_tile_instructions(tmp_path: Path) -> None:
    """The inspection above can fail: a file that uses AMX is recognised."""
    src = tmp_path / "tiles.c"
    src.write_text("void f(void) { __asm__ volatile(\"tilezero %tmm4\\n\\ttilerelease\"); }\n")
    obj = tmp_path / "tiles.o"
    r = subprocess.run(["cc", "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"the assembler does not know AMX: {r.stderr.strip()[:200]}")
    assert _amx_instructions(obj) == ["tilerelease", "tilezero"]


def test_system_info_reports_what_the_build_uses() -> None:
    info = ohai.system_info()
    json.dumps(info)  # JSON-ready
    assert info["cpu_target"] == "native" or info["cpu_target"].startswith(("x86-64-v", "armv", "baseline"))
    assert info["missing"] == []  # this build runs here
    features = info["features"]
    assert features, "no CPU features reported"
    for name, entry in features.items():
        assert entry["used"] == (entry["built"] and entry["supported"]), name
    if not info["amx_enabled"]:
        assert not any(features.get(n, {}).get("built") for n in ("amx-tile", "amx-int8", "amx-bf16"))
    assert "AMX" not in info["llama_system_info"] or info["amx_enabled"]
    if info["llama_system_info"]:
        assert info["llama_system_info"].startswith("CPU :")


def test_info_json_includes_the_system(default_model_path: str) -> None:
    r = run_ohai("info", "-m", default_model_path, "--json")
    assert r.returncode == 0, r.stderr
    system = json.loads(r.stdout)["system"]
    assert system["cpu_target"] == ohai.system_info()["cpu_target"]
    assert "features" in system and "llama_system_info" in system


def _qemu() -> str:
    found = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
    if found is None:
        pytest.fail("qemu-x86_64-static is needed (Debian: qemu-user-static; .ci/run installs it)")
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/cpuinfo").exists(), reason="Linux only")
def test_an_older_cpu_gets_a_message_not_sigill(ohai_cli_bin: str, default_model_path: str) -> None:
    """Run the real binaries on an emulated CPU without AVX (Nehalem): the build here uses at least
    AVX2 (native, or the default portable level), so the engine must refuse with a message."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 only")
    info = ohai.system_info()
    if not info["features"].get("avx", {}).get("built"):
        pytest.skip("this build uses no AVX: it runs on a Nehalem")
    qemu = _qemu()
    r = subprocess.run([qemu, "-cpu", "Nehalem", ohai_cli_bin, "-m", default_model_path, "-p", "hi", "-n", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stderr[-500:])
    assert "uses CPU instructions this machine lacks" in r.stderr and "avx2" in r.stderr
    isolate = Path(ohai._core.__file__).parent / "ohai-isolate"
    r = subprocess.run([qemu, "-cpu", "Nehalem", str(isolate), "probe", default_model_path],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.returncode < 128 and "lacks" in r.stderr, (r.returncode, r.stderr[-500:])


def _configure(build: Path, *options: str) -> subprocess.CompletedProcess[str]:
    cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or shutil.which("cmake") or "cmake"
    return subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         "-DOHAI_BUILD_PYTHON=OFF", "-DOHAI_FETCH_LLAMA_CPP=OFF", f"-DOHAI_LLAMA_CPP_DIR={LLAMA_DIR}",
         "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *options],
        capture_output=True, text=True, timeout=300)


def _compile_flags(build: Path, source_suffix: str) -> str:
    for entry in json.loads((build / "compile_commands.json").read_text()):
        if entry["file"].endswith(source_suffix):
            return str(entry.get("command") or " ".join(entry["arguments"]))
    raise AssertionError(f"{source_suffix} is not compiled")


LEVELS = {
    # level: (flags that must be there, flags that must not, register class that must not appear)
    "x86-64-v2": (["-msse4.2"], ["-mavx", "-mavx2", "-mfma", "-mavx512f", "-march=native"], "%ymm"),
    "x86-64-v3": (["-mavx2", "-mfma", "-mf16c", "-mbmi2"], ["-mavx512f", "-march=native"], "%zmm"),
    "x86-64-v4": (["-mavx2", "-mavx512f", "-mavx512bw", "-mavx512vl"], ["-mamx-tile", "-march=native"], "%tmm"),
}


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_portable_levels_compile_to_what_they_promise(tmp_path: Path, level: str) -> None:
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 levels")
    build = tmp_path / level
    r = _configure(build, "-DOHAI_NATIVE=OFF", f"-DOHAI_CPU_LEVEL={level}")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    must, must_not, register = LEVELS[level]
    flags = _compile_flags(build, "ggml-cpu/arch/x86/quants.c").split()
    for flag in must:
        assert flag in flags, f"{level}: {flag} missing from {flags}"
    for flag in must_not:
        assert flag not in flags, f"{level}: {flag} present"
    # Compile the x86 kernels for real and look at the registers the code uses.
    obj = "llama.cpp/ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu/arch/x86/quants.c.o"
    r = subprocess.run(["ninja", "-C", str(build), obj], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:]
    listing = subprocess.run(["objdump", "-d", str(build / obj)], capture_output=True, text=True, check=True).stdout
    assert register not in listing, f"{level} build uses {register} registers"
    if level != "x86-64-v2":
        assert "%ymm" in listing  # the level's vector width is really used
    # What the engine will say about itself.
    features = _compile_flags(build, "plugin/engine/cpu_build_features.c").split()
    for flag in must:
        assert flag in features, f"cpu_build_features.c is not compiled like ggml-cpu ({flag} missing)"


@pytest.mark.parametrize("options, message", [
    (["-DOHAI_NATIVE=OFF", "-DOHAI_CPU_LEVEL=x86-64-v9"], "unknown x86 OHAI_CPU_LEVEL"),
    (["-DOHAI_NATIVE=ON", "-DOHAI_CPU_LEVEL=x86-64-v2"], "is for portable builds"),
    (["-DOHAI_NATIVE=OFF", "-DOHAI_CPU_LEVEL=x86-64-v3", "-DOHAI_AMX=ON"], "needs OHAI_CPU_LEVEL=x86-64-v4"),
])
def test_bad_cpu_options_are_configure_errors(tmp_path: Path, options: list[str], message: str) -> None:
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 levels")
    r = _configure(tmp_path / "b", *options)
    assert r.returncode != 0 and message in r.stderr, r.stderr[-2000:]
