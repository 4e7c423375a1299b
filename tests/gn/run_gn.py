#!/usr/bin/env python3
"""Build ohai's BUILD.gn files unchanged with real `gn gen` + `ninja`, on a PC, against the stand-in
for OpenHarmony's //build in tests/gn/build.

It lays out a source root the way an OpenHarmony tree would hold the component — the component at
//foundation/ai/ohai and the pinned llama.cpp at //third_party/llama.cpp (both symlinks into this
checkout) — generates with the host toolchain, and builds the given targets (default: everything
the component's groups name). `make gn` runs it.

    python tests/gn/run_gn.py                    # build/gn/out: ohai-cli, plugins, unit tests
    python tests/gn/run_gn.py --args 'ohai_cpu_march="native"' --target ohai-cli
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "tests" / "gn"
COMPONENT = "foundation/ai/ohai"
TARGETS = {
    "ohai": f"//{COMPONENT}:ohai",
    "tests": f"//{COMPONENT}:ohai_tests",
    "ohai-cli": f"//{COMPONENT}/plugin/cli:ohai-cli",
    # The folder layout ai_engine's activate_plugin_list expects.
    "ai_engine": f"//{COMPONENT}/services/server/plugin:plugin",
}


def make_root(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIM / "dot_gn", root / ".gn")
    links = {
        root / "build": SHIM / "build",
        root / COMPONENT: REPO,
        root / "third_party" / "llama.cpp": REPO / "third_party" / "llama.cpp",
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == target:
                continue
            link.unlink()
        link.symlink_to(target)
    (root / "BUILD.gn").write_text(
        "# The stand-in tree's root: what `hb build` would build of ohai.\n"
        "group(\"default\") {\n"
        "  testonly = true\n"
        f"  deps = [ \"//{COMPONENT}:ohai\", \"//{COMPONENT}:ohai_tests\",\n"
        f"          \"//{COMPONENT}/services/server/plugin:plugin\",\n"
        f"          \"//{COMPONENT}/services/client/algorithm_sdk:algorithm_sdk\", \"//{COMPONENT}/test:test\" ]\n"
        "}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=REPO / "build" / "gn" / "root")
    ap.add_argument("--out", default="out", help="output directory, relative to the root")
    ap.add_argument("--args", default="", help="extra gn args")
    ap.add_argument("--target", action="append", choices=sorted(TARGETS), help="what to build (default: ohai, tests)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    if not (REPO / "third_party" / "llama.cpp" / "CMakeLists.txt").exists():
        sys.exit("run_gn: the pinned llama.cpp tree is missing; run scripts/fetch_llama_cpp.py")
    if shutil.which("gn") is None:
        sys.exit("run_gn: gn is not installed (Debian: apt-get install generate-ninja)")
    make_root(a.root)
    args = a.args
    if shutil.which("ccache") and "cc_wrapper" not in args:
        args = (args + ' cc_wrapper="ccache"').strip()
    subprocess.run(["gn", "gen", a.out, f"--args={args}"], cwd=a.root, check=True)
    targets = [TARGETS[t] for t in (a.target or ["ohai", "tests"])]
    ninja = shutil.which("ninja") or "ninja"
    subprocess.run([ninja, "-C", a.out, "-j", str(a.jobs)] + [t.lstrip("/") for t in targets], cwd=a.root, check=True)
    print(f"run_gn: built in {a.root / a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
