"""What the installed package ships: a self-contained extension, type information, entry points."""
from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

import ohai
from ohai import _core


def test_extension_has_no_llama_or_ggml_shared_library() -> None:
    if shutil.which("ldd") is None:
        pytest.fail("ldd is needed to inspect the extension's shared-library dependencies")
    out = subprocess.run(["ldd", _core.__file__], capture_output=True, text=True, check=True).stdout
    assert "llama" not in out and "ggml" not in out, out


def test_type_information_ships() -> None:
    installed = Path(sysconfig.get_paths()["platlib"]) / "ohai"
    for package in {Path(ohai.__file__).parent, installed}:
        assert (package / "py.typed").is_file(), package
        assert (package / "_core.pyi").is_file(), package
        assert list(package.glob("_core*.so")), package


def test_public_names() -> None:
    for name in ohai.__all__:
        assert hasattr(ohai, name), name
    assert issubclass(ohai.InvalidRequestError, ValueError)
    assert issubclass(ohai.ContextOverflowError, ohai.InvalidRequestError)
    assert issubclass(ohai.ModelLoadError, ohai.OhaiError)
