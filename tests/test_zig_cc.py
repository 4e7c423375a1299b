"""scripts/zig_cc.py: clang's CPU flags (what CMake, ggml and the SDK's conventions pass) become one zig -mcpu."""
from __future__ import annotations

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import zig_cc  # noqa: E402


@pytest.mark.parametrize("args, want", [
    # ggml-cpu's level on top of the toolchain's baseline
    (["-mcpu=generic", "-march=armv8.2-a+dotprod+fp16"], ["-mcpu=generic+v8_2a+dotprod+fullfp16"]),
    (["-march=armv8-a"], []),   # the baseline adds nothing; no -mcpu at all is zig's default
    # clang spellings, extension by extension
    (["-mcpu=cortex-a55+nofp16"], ["-mcpu=cortex_a55-fullfp16"]),
    (["-mcpu=cortex-a76+crypto+nossbs"], ["-mcpu=cortex_a76+crypto-ssbs"]),
    # zig spellings pass through whole
    (["-mcpu=cortex_a55+v8_2a-fullfp16"], ["-mcpu=cortex_a55+v8_2a-fullfp16"]),
    (["-mcpu=generic+v8a-neon"], ["-mcpu=generic+v8a-neon"]),
    # 32-bit: -mfpu joins the CPU, the float ABI stays a flag of its own
    # (and softfp turns zig's soft-float target's base VFP feature back on)
    (["-mcpu=generic+v7a", "-mfpu=neon-vfpv4", "-mfloat-abi=softfp", "-O2"],
     ["-mcpu=generic+v7a+neon+vfp4", "-mfloat-abi=softfp", "-O2", "-Xclang", "-target-feature", "-Xclang", "+vfp2",
      "-mimplicit-float"]),
    # zig has no -mtune; other flags keep their order
    (["-c", "-mtune=cortex-a55", "x.c", "-o", "x.o"], ["-c", "x.c", "-o", "x.o"]),
])
def test_cpu_flags(args: list[str], want: list[str]) -> None:
    assert zig_cc.translate(args) == want


def test_linker_flags_zig_accepts() -> None:
    # CMake's LINKER: prefix arrives as -Xlinker pairs; zig wants one -Wl, and refuses --exclude-libs.
    got = zig_cc.translate(["-shared", "-Xlinker", "--version-script=a.map", "-Xlinker", "-z", "-Xlinker", "undefs",
                            "-Wl,--exclude-libs,ALL,--gc-sections", "x.o"])
    assert got == ["-shared", "-Wl,--version-script=a.map,-z,undefs", "-Wl,--gc-sections", "x.o"]


@pytest.mark.parametrize("bad", ["-mfpu=crazy-fpu", "-march=x86-64-v3"])
def test_unknown_cpu_flags_fail_loudly(bad: str) -> None:
    with pytest.raises(SystemExit, match="zig_cc.py: unsupported"):
        zig_cc.translate([bad])
