"""Quantization through llama.cpp's quantizer, via the Python API."""
from __future__ import annotations

from pathlib import Path

import pytest

import ohai


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16"])
def test_quantize_writes_the_requested_type(tiny_model_path: Path, tmp_path: Path, qtype: str) -> None:
    dst = tmp_path / f"tiny-{qtype}.gguf"
    calls: list[tuple[int, int]] = []
    ohai.quantize(tiny_model_path, dst, qtype, progress=lambda done, total: calls.append((done, total)))
    with ohai.Model(dst, vocab_only=True) as m:
        assert m.info.file_type == qtype
    assert dst.stat().st_size < tiny_model_path.stat().st_size
    # Progress counts every tensor once, in order, up to the total.
    assert calls and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == list(range(1, calls[-1][1] + 1))


def test_quantized_model_generates(tiny_model_path: Path, tmp_path: Path) -> None:
    dst = tmp_path / "tiny-q4km.gguf"
    ohai.quantize(tiny_model_path, dst, "Q4_K_M")
    with ohai.Model(dst, n_ctx=128) as m:
        c = m.generate("Hello", max_tokens=5, temperature=0)
        assert c.usage.completion_tokens <= 5


def test_quantize_types_lists_the_common_ones() -> None:
    assert {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M", "F16"} <= set(ohai.quantize_types())


def test_quantize_refuses_same_path(tiny_model_path: Path) -> None:
    with pytest.raises(ohai.InvalidRequestError):
        ohai.quantize(tiny_model_path, tiny_model_path, "Q8_0")
