"""Adversarial input through the public Python API: every bad value is an `ohai.InvalidRequestError`
with a one-line message that does not quote the input, never pybind11's `TypeError: incompatible
function arguments` (which echoes the whole argument) and never a crash.

The cases are generated: every text-taking entry point × several strings that are not valid Unicode,
every argument × several wrong types, every NumPy integer dtype, and file names that are not UTF-8.
"""
from __future__ import annotations

import array
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ohai

MARK = "XYZZY"  # text around each bad character: the error message must not repeat it

# Strings a Python str can hold but UTF-8 cannot encode.
BAD_TEXT = {
    "lone_high_surrogate": f"{MARK}\ud800{MARK}",
    "lone_low_surrogate": f"{MARK}\udfff",
    "pair_as_two_code_points": f"{MARK}\ud83d\ude00{MARK}",  # 😀 written as its UTF-16 halves
    "reversed_pair": f"\ude00\ud83d{MARK}",
    "escaped_byte": os.fsdecode(b"caf\xe9 ") + MARK,  # how Python hands over undecodable bytes
    "late_in_long_text": (MARK + " ") * 500 + "\udc80",
}

# Each entry point that takes text, with the bad string put where the text goes.
TEXT_CALLS: dict[str, Callable[[ohai.Model, str], object]] = {
    "generate": lambda m, s: m.generate(s, max_tokens=1),
    "stream": lambda m, s: list(m.stream(s, max_tokens=1)),
    "generate_stop": lambda m, s: m.generate("Hi", max_tokens=1, stop=s),
    "generate_stop_list": lambda m, s: m.generate("Hi", max_tokens=1, stop=["ok", s]),
    "stream_stop": lambda m, s: list(m.stream("Hi", max_tokens=1, stop=[s])),
    "chat_content": lambda m, s: m.chat([{"role": "user", "content": s}], max_tokens=1),
    "chat_role": lambda m, s: m.chat([{"role": s, "content": "hi"}], max_tokens=1),
    "chat_second_message": lambda m, s: m.chat(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": s}], max_tokens=1),
    "chat_stream": lambda m, s: list(m.chat([{"role": "user", "content": s}], stream=True, max_tokens=1)),
    "chat_stop": lambda m, s: m.chat([{"role": "user", "content": "hi"}], max_tokens=1, stop=[s]),
    "apply_chat_template_content": lambda m, s: m.apply_chat_template([{"role": "user", "content": s}]),
    "apply_chat_template_role": lambda m, s: m.apply_chat_template([{"role": s, "content": "x"}]),
    "embed_one": lambda m, s: m.embed(s),
    "embed_list": lambda m, s: m.embed(["fine", s]),
    "tokenize": lambda m, s: m.tokenize(s),
    "tokenize_special": lambda m, s: m.tokenize(s, add_special=False, parse_special=True),
    "create_completion": lambda m, s: m.create_completion(s, max_tokens=1),
    "create_completion_stream": lambda m, s: list(m.create_completion(s, stream=True, max_tokens=1)),
    "create_chat_completion": lambda m, s: m.create_chat_completion([{"role": "user", "content": s}], max_tokens=1),
    "create_chat_completion_stream": lambda m, s: list(
        m.create_chat_completion([{"role": "user", "content": s}], stream=True, max_tokens=1)),
}


def assert_clean(exc: BaseException, *, absent: tuple[str, ...] = (), mentions: tuple[str, ...] = ()) -> str:
    """The exception is exactly InvalidRequestError, its message one line, not quoting the input."""
    assert type(exc) is ohai.InvalidRequestError, f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert message and len(message.splitlines()) == 1, message
    assert "incompatible function arguments" not in message
    assert len(message) < 200, message
    for text in absent:
        assert text not in message, message
    assert any(m in message for m in mentions) if mentions else True, message
    return message


@pytest.mark.parametrize("text_kind", sorted(BAD_TEXT))
@pytest.mark.parametrize("call", sorted(TEXT_CALLS))
def test_text_that_is_not_unicode(model: ohai.Model, call: str, text_kind: str) -> None:
    bad = BAD_TEXT[text_kind]
    with pytest.raises(Exception) as info:
        TEXT_CALLS[call](model, bad)
    assert_clean(info.value, absent=(MARK, bad), mentions=("Unicode", "UTF-8"))


@pytest.mark.parametrize("text_kind", sorted(BAD_TEXT))
def test_quantize_type_that_is_not_unicode(tmp_path: Path, default_model_path: str, text_kind: str) -> None:
    dst = tmp_path / "out.gguf"
    with pytest.raises(Exception) as info:
        ohai.quantize(default_model_path, dst, BAD_TEXT[text_kind])
    assert_clean(info.value, absent=(MARK,), mentions=("Unicode", "UTF-8"))
    assert not dst.exists()


def test_valid_text_around_the_bad_cases_still_works(model: ohai.Model) -> None:
    # The checks refuse only what UTF-8 cannot hold: astral characters, NULs and escapes are text.
    for text in ("😀 emoji", "a\x00b", "\uffff\U0010ffff", "tab\tnew\nline"):
        assert model.tokenize(text)
        assert model.generate(text, max_tokens=1, temperature=0, stop=[text]).usage.completion_tokens <= 1
        assert model.embed(text).shape == (model.info.n_embd,)
        assert model.apply_chat_template([{"role": "user", "content": text}])


# -- wrongly typed arguments --------------------------------------------------------------------------
MESSAGES = [{"role": "user", "content": "Hi"}]
SECRET = "SECRET-" * 40  # a long value: a message that echoed the input would contain it
SECRET_BYTES = SECRET.encode()

# (name, call) pairs: each must raise InvalidRequestError naming nothing of the input.
WRONG_TYPES: list[tuple[str, Callable[[ohai.Model], object]]] = []


def _case(name: str, call: Callable[[ohai.Model], object]) -> None:
    WRONG_TYPES.append((name, call))


for _value in (None, 3, 2.5, SECRET_BYTES, bytearray(SECRET_BYTES), {"prompt": SECRET}, object(), [SECRET], {1, 2}):
    _case(f"generate-prompt-{type(_value).__name__}", lambda m, v=_value: m.generate(v, max_tokens=1))
    _case(f"stream-prompt-{type(_value).__name__}", lambda m, v=_value: m.stream(v, max_tokens=1))
    _case(f"create_completion-prompt-{type(_value).__name__}", lambda m, v=_value: m.create_completion(v))
for _value in (None, [1], [None], 5, SECRET_BYTES, [SECRET_BYTES], {"a": "b"}, ["ok", 2.0]):
    _case(f"stop-{_value!r:.20}", lambda m, v=_value: m.generate("Hi", max_tokens=1, stop=v))
for _option, _values in {
    "max_tokens": ("5", 2.0, True, -1, [5]),
    "temperature": ("hot", None, float("nan"), float("inf"), -float("inf"), [1], True, 10**400),
    "top_k": (1.5, "3", None, True),
    "top_p": (float("nan"), "x", None),
    "min_p": ("0.1", float("nan"), None),
    "repeat_penalty": (None, float("inf"), "1"),
    "seed": ("1", 1.5, True, -1, 2**64),
}.items():
    for _value in _values:
        _case(f"{_option}-{_value!r:.20}", lambda m, o=_option, v=_value: m.generate("Hi", **{o: v}))
for _value in (None, 3, SECRET_BYTES, [None], ["a", 2], [SECRET_BYTES], {"a"}, {"text": SECRET}):
    _case(f"embed-{type(_value).__name__}-{_value!r:.10}", lambda m, v=_value: m.embed(v))
_case("embed-normalize", lambda m: m.embed("x", normalize="no"))
for _value in (None, 3, SECRET_BYTES, ["a"], 2.5):
    _case(f"tokenize-{_value!r:.10}", lambda m, v=_value: m.tokenize(v))
for _flag_name in ("add_special", "parse_special"):
    for _value in ("no", None, 2, [True]):
        _case(f"tokenize-{_flag_name}-{_value!r}", lambda m, f=_flag_name, v=_value: m.tokenize("x", **{f: v}))
for _value in ("x", SECRET, None, 3, SECRET_BYTES, [1.5], [None], [True], [1, "2"], {1: 2}, [2**40], [-(2**40)]):
    _case(f"detokenize-{_value!r:.12}", lambda m, v=_value: m.detokenize(v))
_case("detokenize-render_special", lambda m: m.detokenize([1], render_special="yes"))
for _value in ("abc", SECRET, None, [], [1, "a"], np.array([1.0, 2.0]), 7):
    _case(f"logits-{_value!r:.12}", lambda m, v=_value: m.logits(v))
for _value in ("1", 0, 4, 1.0, True):
    _case(f"logits-prompt_tokens-{_value!r}", lambda m, v=_value: m.logits([1, 2, 3], prompt_tokens=v))
for _value in (None, "hi", SECRET, SECRET_BYTES, [None], [SECRET], [{"role": 1, "content": "x"}],
               [{"role": "user", "content": None}], [{"role": "user", "content": SECRET_BYTES}], {"role": "user"}):
    _case(f"chat-{_value!r:.16}", lambda m, v=_value: m.chat(v))
    _case(f"apply_chat_template-{_value!r:.16}", lambda m, v=_value: m.apply_chat_template(v))
    _case(f"create_chat_completion-{_value!r:.16}", lambda m, v=_value: m.create_chat_completion(v))
for _value in ("yes", None, 2):
    _case(f"chat-stream-{_value!r}", lambda m, v=_value: m.chat(MESSAGES, stream=v))
    _case(f"create_completion-stream-{_value!r}", lambda m, v=_value: m.create_completion("Hi", stream=v))
    _case(f"create_chat_completion-stream-{_value!r}", lambda m, v=_value: m.create_chat_completion(MESSAGES, stream=v))
    _case(f"apply_chat_template-add_assistant-{_value!r}", lambda m, v=_value: m.apply_chat_template(MESSAGES, v))
for _option, _values in {
    "threads": ("x", None, 1.5, -1, 10**6),
    "n_prompt": ("1", None, -1, True),
    "n_gen": (None, 2.5, 10**9),
    "repetitions": (0, "3", None),
}.items():
    for _value in _values:
        _case(f"bench-{_option}-{_value!r}", lambda m, o=_option, v=_value: m.bench(**{o: v}))
_case("bench-nothing", lambda m: m.bench(0, 0))


@pytest.mark.parametrize(("name", "call"), WRONG_TYPES, ids=[name for name, _ in WRONG_TYPES])
def test_wrongly_typed_arguments(model: ohai.Model, name: str, call: Callable[[ohai.Model], object]) -> None:
    with pytest.raises(Exception) as info:
        result = call(model)
        if hasattr(result, "__next__"):  # a stream: errors must come at the call, but drain it anyway
            list(result)  # type: ignore[call-overload]
    assert_clean(info.value, absent=(SECRET[:14],))


def test_bench_longer_than_the_training_context(model: ohai.Model) -> None:
    n_ctx_train = model.info.n_ctx_train
    assert n_ctx_train > 0
    for n_prompt, n_gen in ((n_ctx_train, 1), (1, n_ctx_train), (65536, 128)):
        with pytest.raises(Exception) as info:
            model.bench(n_prompt, n_gen, repetitions=1)
        assert "training context" in assert_clean(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_ctx": "512"}, {"n_ctx": None}, {"n_ctx": 1.5}, {"threads": "x"}, {"threads": None}, {"threads": True},
     {"vocab_only": "yes"}, {"vocab_only": None}, {"vocab_only": 2}],
    ids=repr,
)
def test_wrongly_typed_constructor_options(default_model_path: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(Exception) as info:
        ohai.Model(default_model_path, **kwargs)
    assert_clean(info.value)


@pytest.mark.parametrize("path", [123, 1.5, [SECRET], {"path": SECRET}, object(), True], ids=repr)
def test_wrongly_typed_model_path(path: object) -> None:
    with pytest.raises(Exception) as info:
        ohai.Model(path, vocab_only=True)  # type: ignore[arg-type]
    assert "model path" in assert_clean(info.value, absent=(SECRET[:14],))


@pytest.mark.parametrize(
    "kwargs",
    [{"threads": "x"}, {"threads": None}, {"threads": 1.5}, {"threads": -1}, {"threads": True},
     {"type": None}, {"type": 4}, {"type": b"Q4_0"}, {"progress": "bar"}],
    ids=repr,
)
def test_wrongly_typed_quantize_arguments(tmp_path: Path, default_model_path: str, kwargs: dict[str, Any]) -> None:
    dst = tmp_path / "out.gguf"
    qtype = kwargs.pop("type", "Q4_0")
    with pytest.raises(Exception) as info:
        ohai.quantize(default_model_path, dst, qtype, **kwargs)
    assert_clean(info.value)
    assert not dst.exists()


@pytest.mark.parametrize("level", ["garbage", "", SECRET, os.fsdecode(b"\xff"), [], True, 2.5], ids=repr)
def test_bad_log_levels(level: object) -> None:
    with pytest.raises(Exception) as info:
        ohai.set_log_level(level)  # type: ignore[arg-type]
    assert_clean(info.value, absent=(SECRET,))


# -- token prompts ------------------------------------------------------------------------------------
TOKENS = [1, 30, 100, 42]  # ids below 128 fit every integer dtype
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intp", "uintp"]


@pytest.fixture(scope="module")
def reference(model: ohai.Model) -> ohai.Completion:
    return model.generate(TOKENS, max_tokens=2, temperature=0)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_numpy_integer_arrays_are_token_prompts(model: ohai.Model, reference: ohai.Completion, dtype: str) -> None:
    tokens = np.array(TOKENS, dtype=dtype)
    got = model.generate(tokens, max_tokens=2, temperature=0)
    assert got.usage.prompt_tokens == len(TOKENS) and got.tokens == reference.tokens
    assert model.detokenize(tokens) == model.detokenize(TOKENS)
    assert model.logits(tokens).shape == (len(TOKENS), model.info.n_vocab)
    assert model.logits(tokens, prompt_tokens=np.int64(2)).shape == (len(TOKENS), model.info.n_vocab)
    # A strided view and a slice are arrays too.
    assert model.detokenize(np.repeat(np.array(TOKENS, dtype=dtype), 2)[::2]) == model.detokenize(TOKENS)


@pytest.mark.parametrize(
    "tokens",
    [tuple(TOKENS), range(1, 5), array.array("i", TOKENS), array.array("h", TOKENS), array.array("q", TOKENS),
     array.array("H", TOKENS), [np.int64(t) for t in TOKENS], [np.uint16(t) for t in TOKENS]],
    ids=lambda t: type(t).__name__ + (f"-{t.typecode}" if isinstance(t, array.array) else ""),
)
def test_other_integer_sequences_are_token_prompts(model: ohai.Model, tokens: Any) -> None:
    expected = list(tokens)
    assert model.generate(tokens, max_tokens=1, temperature=0).usage.prompt_tokens == len(expected)
    assert model.detokenize(tokens) == model.detokenize([int(t) for t in expected])


NOT_TOKENS: dict[str, object] = {
    "bytes": SECRET_BYTES,
    "bytearray": bytearray(b"ab"),
    "memoryview": memoryview(b"ab"),
    "memoryview_of_ints": memoryview(array.array("i", TOKENS)),
    "array_b": array.array("b", TOKENS),
    "array_B": array.array("B", TOKENS),
    "float64_array": np.array([1.0, 2.0]),
    "float32_array": np.array(TOKENS, dtype=np.float32),
    "float16_array": np.array(TOKENS, dtype=np.float16),
    "bool_array": np.array([True, False]),
    "complex_array": np.array([1 + 0j]),
    "object_array": np.array(TOKENS, dtype=object),
    "str_array": np.array(["1", "2"]),
    "2d_array": np.array([TOKENS, TOKENS]),
    "0d_array": np.array(5),
    "list_with_bool": [1, True],
    "list_with_float": [1, 2.0],
    "list_with_numpy_float": [np.float64(1.0)],
    "list_with_numpy_bool": [np.bool_(True)],
    "list_with_str": [1, "2"],
    "nested_list": [[1, 2]],
    "too_large": [2**31],
    "far_too_large": [10**100],
    "str": SECRET,
    "generator": (t for t in TOKENS),
    "dict": {1: 2},
}
TOKEN_CALLS: dict[str, Callable[[ohai.Model, Any], object]] = {
    "generate": lambda m, t: m.generate(t, max_tokens=1),
    "stream": lambda m, t: m.stream(t, max_tokens=1),
    "detokenize": lambda m, t: m.detokenize(t),
    "logits": lambda m, t: m.logits(t),
}


# A str is text, not tokens, where a prompt may be either.
NOT_TOKEN_CASES = [(call, kind) for call in sorted(TOKEN_CALLS) for kind in sorted(NOT_TOKENS)
                   if not (kind == "str" and call in ("generate", "stream"))]


@pytest.mark.parametrize(("call", "kind"), NOT_TOKEN_CASES)
def test_what_is_not_a_token_sequence(model: ohai.Model, call: str, kind: str) -> None:
    value = NOT_TOKENS[kind]
    if kind == "generator":
        value = (t for t in TOKENS)  # a fresh one per case
    with pytest.raises(Exception) as info:
        TOKEN_CALLS[call](model, value)
    message = assert_clean(info.value, absent=(SECRET[:14],))
    assert "10000000000" not in message  # the huge id is not quoted either


# -- model paths --------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["\0", "\0junk", "\0.gguf", "\0\0"], ids=repr)
@pytest.mark.parametrize("as_type", ["str", "bytes", "Path"])
def test_nul_in_model_path_is_refused(default_model_path: str, suffix: str, as_type: str) -> None:
    # The part before the NUL names a real model: it must not be opened instead.
    path: Any = default_model_path + suffix
    if as_type == "bytes":
        path = os.fsencode(path)
    elif as_type == "Path":
        path = Path(path)
    with pytest.raises(Exception) as info:
        ohai.Model(path, vocab_only=True)
    assert "NUL" in assert_clean(info.value)


@pytest.mark.parametrize("bad", ["\ud800", "\udfff", "\ud83d\ude00"], ids=repr)
def test_model_path_that_cannot_be_encoded(tmp_path: Path, bad: str) -> None:
    with pytest.raises(Exception) as info:
        ohai.Model(str(tmp_path / f"m{bad}.gguf"), vocab_only=True)
    assert_clean(info.value, absent=(bad,))


# Names a file system accepts but that are not UTF-8 (or are awkward UTF-8).
ODD_NAMES = [b"m\xff\xfe.gguf", b"caf\xe9.gguf", b"\xed\xa0\x80.gguf", b"with space\nand newline.gguf",
             "ünïcödé 模型.gguf".encode()]


@pytest.mark.parametrize("name", ODD_NAMES, ids=repr)
@pytest.mark.parametrize("as_type", ["str", "bytes", "Path"])
def test_model_path_round_trips(tmp_path: Path, default_model_path: str, name: bytes, as_type: str) -> None:
    link = os.path.join(os.fsencode(tmp_path), name)
    os.symlink(os.fsencode(default_model_path), link)
    given: Any = {"str": os.fsdecode(link), "bytes": link, "Path": Path(os.fsdecode(link))}[as_type]
    with ohai.Model(given, vocab_only=True) as m:
        assert m.info.path == os.fsdecode(link)  # exactly what was given, as a str
        assert os.fsencode(m.info.path) == link
        assert isinstance(m.info.path, str)
        assert m.tokenize("hello")


@pytest.mark.parametrize("name", ODD_NAMES, ids=repr)
def test_missing_model_with_an_odd_name(tmp_path: Path, name: bytes) -> None:
    with pytest.raises(ohai.ModelLoadError) as info:
        ohai.Model(os.fsdecode(os.path.join(os.fsencode(tmp_path), name)))
    assert "not found" in str(info.value)


def test_the_model_still_works(model: ohai.Model) -> None:
    # After every refusal above, the shared engine answers as before.
    assert model.generate("The sky is", max_tokens=4, temperature=0).usage.completion_tokens == 4
