"""zig (PyPI `ziglang`) as a clang-compatible cross toolchain for CMake.

    zig_cc.py cc|c++|ar|ranlib ARGS...

The cross builds that stand in for the OpenHarmony SDK (cmake/toolchains/zig.cmake) call this
through the small shell scripts scripts/zig-cc, zig-c++, zig-ar and zig-ranlib. `ar` and `ranlib`
go to zig unchanged. For `cc` / `c++`, what zig's driver takes differently from clang:
- the CPU: zig wants one `-mcpu=<model>+<feature>-<feature>` in its own spelling; it refuses clang's
  `-march=armv8.2-a+dotprod` and hyphenated `-mcpu=cortex-a55`, and ignores `-mfpu=`. The build passes
  the clang spellings (the flags the SDK's clang gets: ggml-cpu's -march from OHAI_CPU_LEVEL, -mfpu on
  32-bit arm), turned here into one zig -mcpu: the model from -mcpu (else `generic`), then the
  architecture and extensions from -march, then the FPU from -mfpu;
- linker options: CMake's `-Xlinker a -Xlinker b` become `-Wl,a,b`, and `--exclude-libs` is dropped.
Everything else is passed through.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# clang extension names (-march=...+ext) whose zig feature name differs; others map by '-' -> '_'.
_EXTENSIONS = {
    "fp16": "fullfp16",
    "simd": "neon",
    "fp": "fp_armv8",
    "rdma": "rdm",
    "memtag": "mte",
    "sha2": "sha2",
}
# -mfpu values (32-bit arm) and the zig features they stand for.
_FPUS = {
    "neon": ["neon"],
    "neon-vfpv3": ["neon", "vfp3"],
    "neon-vfpv4": ["neon", "vfp4"],
    "neon-fp16": ["neon", "vfp3", "fp16"],
    "neon-fp-armv8": ["neon", "fp_armv8"],
    "crypto-neon-fp-armv8": ["neon", "fp_armv8", "crypto"],
    "vfpv3": ["vfp3"],
    "vfpv3-d16": ["vfp3d16"],
    "vfpv4": ["vfp4"],
    "vfpv4-d16": ["vfp4d16"],
    "fp-armv8": ["fp_armv8"],
}


def _arch_feature(arch: str) -> str | None:
    """armv8.2-a -> v8_2a, armv7-a -> v7a, armv9-a -> v9a; armv8-a -> None (every aarch64 model has it)."""
    name = arch.lower()
    if not name.startswith("armv"):
        raise SystemExit(f"zig_cc.py: unsupported -march value '{arch}'")
    version = name[len("armv"):].replace("-", "").replace(".", "_")   # 8.2-a -> 8_2a
    return None if version == "8a" else f"v{version}"


def _extension(ext: str) -> str:
    enable = not ext.startswith("no")
    name = ext[2:] if not enable else ext
    zig = _EXTENSIONS.get(name, name.replace("-", "_").replace(".", "_"))
    return ("+" if enable else "-") + zig


def _linker_args(args: list[str]) -> list[str]:
    """zig refuses --exclude-libs. It only keeps archive members' symbols out of a shared library's
    dynamic table; the plugins' version script (local: *) does that already, and tests/test_cross.py
    checks the exports of the result."""
    kept: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == "--exclude-libs":
            skip = True
        elif not a.startswith("--exclude-libs="):
            kept.append(a)
    return kept


def _merge_xlinker(args: list[str]) -> list[str]:
    """CMake's LINKER: prefix becomes `-Xlinker a -Xlinker b`, which zig takes one word at a time
    (refusing `--version-script=FILE` there); runs of them become one `-Wl,a,b`, which zig parses."""
    out: list[str] = []
    run: list[str] = []
    it = iter(args)
    for a in it:
        if a == "-Xlinker":
            run.append(next(it, ""))
            continue
        if run:
            out.append("-Wl," + ",".join(run))
            run = []
        out.append(a)
    if run:
        out.append("-Wl," + ",".join(run))
    return out


def translate(args: list[str]) -> list[str]:
    """Clang CPU flags -> one zig -mcpu; the rest unchanged (order kept)."""
    model: str | None = None
    model_features: list[str] = []
    march: list[str] = []
    fpu: list[str] = []
    rest: list[str] = []
    for a in _merge_xlinker(args):
        if a.startswith("-mcpu="):
            # clang: cortex-a55+nofp16; zig: cortex_a55+v8_2a-fullfp16. Clang spellings are turned
            # into zig's, extension by extension; a zig spelling (an underscore anywhere, or a
            # feature removed with '-' after a '+') passes through whole. ("generic-neon" reads
            # as a clang model name: write "generic+v8a-neon".)
            value = a[len("-mcpu="):]
            model, *exts = value.split("+")
            if "_" in value or any("-" in e for e in exts):
                model, model_features = value, []
            else:
                model = model.replace("-", "_")
                model_features = [_extension(e) for e in exts if e]
        elif a.startswith("-march="):
            value = a[len("-march="):]
            arch, *exts = value.split("+")
            march = []
            feature = _arch_feature(arch)
            if feature:
                march.append("+" + feature)
            march += [_extension(e) for e in exts if e]
        elif a.startswith("-mfpu="):
            value = a[len("-mfpu="):]
            if value not in _FPUS:
                raise SystemExit(f"zig_cc.py: unsupported -mfpu value '{value}'")
            fpu = ["+" + f for f in _FPUS[value]]
        elif a.startswith("-mtune="):
            continue   # zig has no separate tuning flag; the model from -mcpu tunes
        elif a.startswith("-Wl,"):
            kept = _linker_args(a[len("-Wl,"):].split(","))
            if kept:
                rest.append("-Wl," + ",".join(kept))
        else:
            rest.append(a)
    if "-mfloat-abi=softfp" in rest:
        # zig gives soft-float targets (arm-linux-musleabi) the settings of -mfloat-abi=soft: the base
        # VFP feature off (-vfp2) and no implicit float. With NEON and VFPv4 on, the first contradiction
        # crashes LLVM's backend on ggml's vector code, and the second keeps the vectorizers from using
        # NEON at all. clang's own driver gives softfp neither: so neither do we.
        rest += ["-Xclang", "-target-feature", "-Xclang", "+vfp2", "-mimplicit-float"]
    if model is None and not march and not fpu:
        return rest
    cpu = (model or "generic") + "".join(model_features + march + fpu)
    return [f"-mcpu={cpu}", *rest]


def zig_executable() -> str:
    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.origin:
        raise SystemExit(f"zig_cc.py: the Python package ziglang is not installed for {sys.executable} "
                         "(`make venv` installs the pinned version)")
    return str(Path(spec.origin).parent / "zig")


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in ("cc", "c++", "ar", "ranlib"):
        raise SystemExit("usage: zig_cc.py cc|c++|ar|ranlib ARGS...")
    tool, args = argv[1], argv[2:]
    if tool in ("cc", "c++"):
        args = translate(args)
    zig = zig_executable()
    # What `python -m ziglang` does, without a second interpreter start.
    os.execv(zig, [zig, tool, *args])


if __name__ == "__main__":
    main(sys.argv)
