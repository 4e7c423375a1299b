"""Native log lines: quiet by default, routed to the `ohai.native` logger on request."""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import ohai


def test_quiet_by_default(default_model_path: str, tmp_path) -> None:
    code = (f"import ohai; m = ohai.Model({default_model_path!r}, n_ctx=128); "
            "m.generate('Hi', max_tokens=2, temperature=0); m.embed('x'); m.close()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""


def test_native_lines_reach_logging(default_model_path: str, caplog: pytest.LogCaptureFixture) -> None:
    try:
        ohai.set_log_level("info")
        with caplog.at_level(logging.INFO, logger="ohai.native"):
            with ohai.Model(default_model_path, n_ctx=128) as m:
                m.generate("Hi", max_tokens=1, temperature=0)
    finally:
        ohai.set_log_level(None)
    lines = [r.getMessage() for r in caplog.records if r.name == "ohai.native"]
    assert any("llama_model_loader" in line or "load" in line for line in lines), lines[:5]
    assert all("\n" not in line for line in lines)


def test_bad_log_level() -> None:
    with pytest.raises(ValueError):
        ohai.set_log_level("chatty")
