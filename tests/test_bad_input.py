"""Bad input gets a clear error, through the Python API and the CLIs, and the process survives."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import ohai
from conftest import run_ohai

EXPECTED = {
    "missing": "not found",
    "directory": "directory",
    "empty": "empty",
    "random": "bad magic",
    "truncated": "truncated",
    "header_only": "truncated",
    "bad_version": "version 99",
    "bad_kv_count": "key/value count",
    "bad_tensor_dims": "dimensions",
    "bad_tensor_type": "unknown type",
    "bad_tensor_offset": "past the end",
    "zero_layers": "block_count 0",
    "too_many_layers": "block_count 100000",
    "duplicate_token": "duplicate token",
    "bad_head_count": "n_rot",  # llama.cpp's own reason, not its generic wrapper
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_bad_model_file_python(bad_models: dict[str, Path], kind: str) -> None:
    with pytest.raises(ohai.ModelLoadError, match=EXPECTED[kind]):
        ohai.Model(bad_models[kind])


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_bad_model_file_cli(bad_models: dict[str, Path], kind: str) -> None:
    r = run_ohai("info", "-m", str(bad_models[kind]))
    assert r.returncode == 1
    assert r.stderr.startswith("ohai: error:") and EXPECTED[kind] in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # one line, no traceback


@pytest.mark.parametrize("kind", ["random", "truncated", "bad_tensor_type"])
def test_bad_model_file_native_cli(bad_models: dict[str, Path], kind: str, ohai_cli_bin: str) -> None:
    r = subprocess.run([ohai_cli_bin, "-m", str(bad_models[kind]), "-p", "hi"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("ohai-cli: error:") and EXPECTED[kind] in r.stderr


def test_bad_files_do_not_harm_a_loaded_model(model: ohai.Model, bad_models: dict[str, Path]) -> None:
    for path in bad_models.values():
        with pytest.raises(ohai.ModelLoadError):
            ohai.Model(path)
    assert model.generate("Hello", max_tokens=3, temperature=0).usage.completion_tokens == 3


def test_prompt_longer_than_context(default_model_path: str) -> None:
    with ohai.Model(default_model_path, n_ctx=64) as m:
        with pytest.raises(ohai.ContextOverflowError, match="context"):
            m.generate("word " * 200)
        with pytest.raises(ohai.InvalidRequestError):  # the hierarchy a caller can rely on
            m.generate("word " * 200)
        with pytest.raises(ValueError):
            list(m.stream("word " * 200))
        with pytest.raises(ohai.ContextOverflowError):
            m.embed("word " * 200)
        # The context fills up during generation: that is a normal "length" finish.
        c = m.generate("Count to one thousand: 1, 2, 3,", max_tokens=500, temperature=0)
        assert c.finish_reason == "length"
        assert c.usage.prompt_tokens + c.usage.completion_tokens <= 64
        assert m.generate("Hi", max_tokens=2, temperature=0).usage.completion_tokens <= 2


def test_prompt_longer_than_context_cli(default_model_path: str) -> None:
    r = run_ohai("run", "-m", default_model_path, "-c", "32", "word " * 100)
    assert r.returncode == 1
    assert "context" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"min_p": -0.1}, "min_p"),
        ({"top_k": -3}, "top_k"),
        ({"repeat_penalty": 0}, "repeat_penalty"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"stop": [1, 2]}, "stop"),
        ({"stop": ["x" * 10_000]}, "stop"),
    ],
)
def test_bad_generation_options(model: ohai.Model, options: dict[str, object], message: str) -> None:
    with pytest.raises(ohai.InvalidRequestError, match=message):
        model.generate("Hi", **options)  # type: ignore[arg-type]


def test_unknown_option_is_a_type_error(model: ohai.Model) -> None:
    with pytest.raises(TypeError):
        model.generate("Hi", temprature=0.5)  # type: ignore[call-arg]


@pytest.mark.parametrize("prompt", [None, 42, b"bytes", [], [1, "a"], [10**12], [-1], [10**6]])
def test_bad_prompts(model: ohai.Model, prompt: object) -> None:
    with pytest.raises(ohai.InvalidRequestError):
        model.generate(prompt, max_tokens=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "messages",
    [[], "hello", [{"role": "user"}], [{"content": "x"}], [{"role": "", "content": "x"}], ["hi"],
     [{"role": "user", "content": 3}]],
)
def test_bad_chat_messages(model: ohai.Model, messages: object) -> None:
    with pytest.raises(ohai.InvalidRequestError):
        model.chat(messages)  # type: ignore[arg-type]


def test_bad_embed_input(model: ohai.Model) -> None:
    with pytest.raises(ohai.InvalidRequestError):
        model.embed([1, 2])  # type: ignore[list-item]
    with pytest.raises(ohai.InvalidRequestError):
        model.embed("")


def test_bad_constructor_arguments(default_model_path: str) -> None:
    with pytest.raises(ohai.InvalidRequestError):
        ohai.Model(default_model_path, n_ctx=-1)
    with pytest.raises(ohai.InvalidRequestError):
        ohai.Model(default_model_path, threads=-2)


def test_detokenize_rejects_unknown_ids(model: ohai.Model) -> None:
    with pytest.raises(ohai.InvalidRequestError, match="out of range"):
        model.detokenize([model.info.n_vocab + 5])


@pytest.mark.parametrize("kind", ["duplicate_token", "zero_layers"])
def test_bad_values_are_refused_even_vocab_only(bad_models: dict[str, Path], kind: str) -> None:
    with pytest.raises(ohai.ModelLoadError, match=EXPECTED[kind]):
        ohai.Model(bad_models[kind], vocab_only=True)


@pytest.mark.parametrize(("option", "value"), [("n_ctx", 2**32), ("threads", 3_000_000_000), ("threads", 100_000)])
def test_oversized_constructor_arguments(default_model_path: str, option: str, value: int) -> None:
    with pytest.raises(ohai.InvalidRequestError, match=option):
        ohai.Model(default_model_path, **{option: value})  # type: ignore[arg-type]


def test_oversized_cli_numbers_are_one_line_errors(default_model_path: str, ohai_cli_bin: str) -> None:
    for args in (["run", "-m", default_model_path, "-c", "4294967296", "hi"],
                 ["run", "-m", default_model_path, "-t", "3000000000", "hi"],
                 ["bench", "-m", default_model_path, "-t", "3000000000"]):
        r = run_ohai(*args)
        assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run([ohai_cli_bin, "-m", default_model_path, "-p", "x", "-t", "4294967297"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "-t must be in" in r.stderr


def test_quantize_never_overwrites_its_source(tmp_path: Path, default_model_path: str) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(Path(default_model_path).read_bytes())
    link = tmp_path / "alias.gguf"
    link.symlink_to(src)
    with pytest.raises(ohai.InvalidRequestError, match="differ"):
        ohai.quantize(src, link, "Q8_0")
    assert src.stat().st_size == Path(default_model_path).stat().st_size


def test_quantize_leaves_neighbouring_files_alone(tmp_path: Path, tiny_model_path: Path) -> None:
    src = tmp_path / "tiny.gguf.partial"   # a name a naive temporary file could collide with
    src.write_bytes(tiny_model_path.read_bytes())
    bystander = tmp_path / "tiny.gguf.tmp"
    bystander.write_text("keep me")
    ohai.quantize(src, tmp_path / "tiny.gguf", "Q8_0")
    assert src.read_bytes() == tiny_model_path.read_bytes()
    assert bystander.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf", "tiny.gguf.partial", "tiny.gguf.tmp"]


def test_quantize_over_a_loaded_model_leaves_it_working(tmp_path: Path, tiny_model_path: Path) -> None:
    target = tmp_path / "tiny-q8.gguf"
    ohai.quantize(tiny_model_path, target, "Q8_0")
    with ohai.Model(target, n_ctx=64) as loaded:
        before = loaded.generate("Hello", max_tokens=4, temperature=0).text
        ohai.quantize(tiny_model_path, target, "Q4_0", overwrite=True)  # replaces the file the model has mapped
        assert loaded.generate("Hello", max_tokens=4, temperature=0).text == before


def test_bad_quantize_requests(tmp_path: Path, bad_models: dict[str, Path], default_model_path: str) -> None:
    with pytest.raises(ohai.InvalidRequestError, match="unknown quantization type"):
        ohai.quantize(default_model_path, tmp_path / "x.gguf", "Q3_XYZ")
    with pytest.raises(ohai.ModelLoadError):
        ohai.quantize(bad_models["truncated"], tmp_path / "y.gguf", "Q8_0")
    assert not (tmp_path / "y.gguf").exists()
