"""The GN build (what `hb build` runs), proven with real gn + ninja against the stand-in for
OpenHarmony's //build in tests/gn: the source lists agree with the CMake build, every configuration
generates, and the GN-built ohai-cli answers exactly like the CMake-built one."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LLAMA = ROOT / "third_party" / "llama.cpp"
GN_ROOT = ROOT / "build" / "gn" / "root"


def _gni_lists(path: Path) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for name, body in re.findall(r"(\w+) = \[(.*?)\]", path.read_text(), flags=re.S):
        lists[name] = re.findall(r'"([^"]+)"', body)
    return lists


def _cmake_sources() -> dict[str, set[str]]:
    """What the CMake build compiles per llama.cpp target (compile_commands.json), plus llama's
    model graphs, which CMake globs and compiles as unity batches (absent from the database)."""
    found = sorted(ROOT.glob("build/cp3*/compile_commands.json"))
    if not found:
        pytest.fail("no CMake build to compare with; run `make install`")
    per_target: dict[str, set[str]] = defaultdict(set)
    for entry in json.loads(found[0].read_text()):
        output = entry.get("output") or entry["command"].split(" -o ")[1].split()[0]
        target = re.search(r"CMakeFiles/([^/]+)\.dir/", output)
        if target and str(LLAMA) + "/" in entry["file"]:
            per_target[target.group(1)].add(entry["file"].split(str(LLAMA) + "/")[1])
    per_target["llama-models"] = {str(p.relative_to(LLAMA)) for p in (LLAMA / "src" / "models").glob("*.cpp")}
    return per_target


def test_gni_source_lists_match_the_pinned_cmake_build() -> None:
    gni = _gni_lists(ROOT / "gn" / "llama_cpp_sources.gni")
    cmake = _cmake_sources()
    assert set(gni["llama_cpp_ggml_base_sources"]) == cmake["ggml-base"]
    assert set(gni["llama_cpp_ggml_sources"]) == cmake["ggml"]
    assert set(gni["llama_cpp_vendor_hash_sources"]) == cmake["vendor-hash"]
    assert set(gni["llama_cpp_llama_sources"]) == cmake["llama"]
    assert set(gni["llama_cpp_llama_model_sources"]) == cmake["llama-models"]
    # This host is x86: CMake compiled the common part and the x86 kernels.
    assert set(gni["llama_cpp_ggml_cpu_sources"]) | set(gni["llama_cpp_ggml_cpu_x86_sources"]) == cmake["ggml-cpu"]
    # The arm kernels are what ggml-cpu's CMake adds for ARM.
    cpu_cmake = (LLAMA / "ggml" / "src" / "ggml-cpu" / "CMakeLists.txt").read_text()
    arm_block = re.search(r'GGML_SYSTEM_ARCH STREQUAL "ARM"\).*?list\(APPEND GGML_CPU_SOURCES(.*?)\)', cpu_cmake,
                          flags=re.S)
    assert arm_block
    arm = {"ggml/src/" + f for f in re.findall(r"(ggml-cpu/arch/arm/[\w.-]+\.(?:cpp|c))\b", arm_block.group(1))}
    assert set(gni["llama_cpp_ggml_cpu_arm_sources"]) == arm
    for files in gni.values():
        for f in files:
            assert (LLAMA / f).is_file(), f


@pytest.mark.parametrize("folder", ["plugin/engine", "plugin/nnrt", "plugin/aie"])
def test_our_gn_and_cmake_source_lists_agree(folder: str) -> None:
    def code(name: str) -> str:   # without comments
        return "\n".join(line.split("#")[0] for line in (ROOT / folder / name).read_text().splitlines())

    gn = set(re.findall(r'"([\w/]+\.(?:cpp|c))"', code("BUILD.gn")))
    cmake = set(re.findall(r"([\w/]+\.(?:cpp|c))\b", code("CMakeLists.txt")))
    cmake = {Path(c).name for c in cmake if not c.startswith(("host/", "tests/"))}
    assert {Path(g).name for g in gn} == cmake


def _gn_gen(out: str, args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gn", "gen", out, f"--args={args}"], cwd=GN_ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def gn_build() -> Path:
    if shutil.which("gn") is None:
        pytest.fail("gn is not installed (Debian: generate-ninja; .ci/run installs it)")
    # The host check uses this machine's instruction sets, as the CMake build does, so that both
    # run the same kernels and must give the same text.
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "gn" / "run_gn.py"), "--args", 'ohai_cpu_march="native"'],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return GN_ROOT / "out"


def test_gn_built_cli_equals_cmake_built(gn_build: Path, default_model_path: str, ohai_cli_bin: str) -> None:
    argv = ["-m", default_model_path, "-p", "The capital of France is", "-n", "32", "--temp", "0", "-t", "2"]
    env = {**os.environ, "OHAI_NNRT_LIBRARY_DIR": "/nonexistent"}
    gn = subprocess.run([str(gn_build / "ohai-cli"), *argv], capture_output=True, text=True, timeout=300, env=env)
    cmake = subprocess.run([ohai_cli_bin, *argv], capture_output=True, text=True, timeout=300, env=env)
    assert gn.returncode == 0 and cmake.returncode == 0, gn.stderr + cmake.stderr
    assert gn.stdout == cmake.stdout and "Paris" in gn.stdout


def test_gn_built_plugins_and_unit_tests(gn_build: Path, default_model_path: str) -> None:
    for lib in ("libohai_llm.so", "libohai_llm_sync.so"):
        defined = subprocess.run(["nm", "-D", "--defined-only", str(gn_build / lib)], capture_output=True, text=True,
                                 check=True).stdout
        assert {line.split()[-1] for line in defined.splitlines()} == {"PLUGIN_INTERFACE"}
    env = {**os.environ, "OHAI_TEST_MODEL": default_model_path}
    for test in ("test_text_stream", "test_gguf_check", "test_scheduler"):
        r = subprocess.run([str(gn_build / test)], capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, (test, r.stdout[-2000:], r.stderr[-2000:])


@pytest.mark.parametrize("args", ['ohai_aie_small_system=true', 'ohai_enable_nnrt=false', 'target_cpu="arm64"',
                                  'target_cpu="arm64" ohai_arm64_i8mm=true', 'target_cpu="arm"',
                                  'target_cpu="arm64" ohai_affinity_shim=true'])
def test_every_configuration_generates(gn_build: Path, args: str, tmp_path: Path) -> None:
    out = "out-" + re.sub(r"\W+", "_", args)
    r = _gn_gen(out, args)
    assert r.returncode == 0, r.stdout + r.stderr
    if "arm64" in args:
        desc = subprocess.run(["gn", "desc", out, "//foundation/ai/ohai/gn/llama.cpp:ggml_cpu", "cflags"],
                              cwd=GN_ROOT, capture_output=True, text=True, check=True).stdout
        assert ("-march=armv8.2-a+dotprod+i8mm" if "i8mm" in args else "-march=armv8.2-a+dotprod\n") in desc + "\n"
    if "affinity_shim" in args:
        desc = subprocess.run(["gn", "desc", out, "//foundation/ai/ohai/gn/llama.cpp:ggml_cpu"], cwd=GN_ROOT,
                              capture_output=True, text=True, check=True).stdout
        assert "cmake/compat/ohai_affinity.c" in desc and "ohai_affinity.h" in desc, desc[-3000:]
    if "small_system" in args:
        desc = subprocess.run(["gn", "desc", out, "//foundation/ai/ohai/plugin/aie:ohai_llm"], cwd=GN_ROOT,
                              capture_output=True, text=True, check=True).stdout
        assert "shared_library" in desc


def test_affinity_shim_builds_into_ggml_cpu(gn_build: Path) -> None:
    """ohai_affinity_shim=true (OpenHarmony musl without pthread_setaffinity_np): ggml-cpu is compiled
    against the replacement and carries it, as the CMake build's OHAI_AFFINITY_SHIM does."""
    out = "out-affinity-shim"
    r = _gn_gen(out, 'ohai_cpu_march="native" ohai_affinity_shim=true')
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["ninja", "-C", out, "foundation/ai/ohai/gn/llama.cpp:ggml_cpu"], cwd=GN_ROOT,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    library = next((GN_ROOT / out).rglob("libggml_cpu.a"))
    symbols = subprocess.run(["nm", str(library)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"\bU ohai_pthread_setaffinity_np\b", symbols), "ggml-cpu does not call the replacement"
    assert re.search(r"\bT ohai_pthread_setaffinity_np\b", symbols), "the replacement is not in the library"
    assert not re.search(r"\bU pthread_setaffinity_np\b", symbols)


def test_bundle_json_names_what_exists() -> None:
    bundle = json.loads((ROOT / "bundle.json").read_text())
    component = bundle["component"]
    assert bundle["name"] == "@ohos/ohai" and component["subsystem"] == "ai"
    assert set(component["adapted_system_type"]) <= {"mini", "small", "standard"}
    root_gn = (ROOT / "BUILD.gn").read_text()
    dest = "//" + bundle["segment"]["destPath"]
    build = component["build"]
    for label in build["sub_component"] + build["test"] + [k["name"] for k in build["inner_kits"]]:
        path, _, name = label.partition(":")
        folder = ROOT / path[len(dest):].lstrip("/")
        text = (folder / "BUILD.gn").read_text() if folder != ROOT else root_gn
        assert f'("{name}")' in text, label
    for kit in build["inner_kits"]:
        base = ROOT / kit["header"]["header_base"][len(dest):].lstrip("/")
        for header in kit["header"]["header_files"]:
            assert (base / header).is_file(), header
    # Every feature is a declared GN argument.
    args = (ROOT / "gn" / "ohai.gni").read_text()
    for feature in component["features"]:
        assert f"{feature} =" in args, feature
