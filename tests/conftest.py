"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test helpers (tiny_model, reference_llama) live next to this file; make them
# importable under any pytest import mode, not only the default "prepend".
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight F32 llama GGUF (real llama SPM vocab), built once per session."""
    from tiny_model import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-model") / "tiny-llama-f32.gguf", seed=0)
