"""Generation on the default model, end to end through the Python API."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest

import ohai

GREEDY = {"temperature": 0.0}
LONG_STORY = [{"role": "user", "content": "Write a very long story about dragons."}]


def test_greedy_is_deterministic(model: ohai.Model) -> None:
    a = model.generate("The three primary colors are", max_tokens=24, **GREEDY)
    b = model.generate("The three primary colors are", max_tokens=24, **GREEDY)
    assert a.text == b.text
    assert a.tokens == b.tokens
    assert len(a.tokens) > 0


def test_greedy_matches_llama_cpp(model: ohai.Model, llama_simple_bin: str, default_model_path: str) -> None:
    """ohai's greedy decoding gives exactly what llama.cpp's own greedy example prints."""
    prompt = "The capital of Germany is"
    n = 32
    ours = model.generate(prompt, max_tokens=n, **GREEDY)
    out = subprocess.run([llama_simple_bin, "-m", default_model_path, "-n", str(n), prompt],
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    # llama-simple echoes the prompt's tokens (specials rendered), then the generated text, then "\n".
    prompt_tokens = model.tokenize(prompt, add_special=True, parse_special=True)
    echoed = model.detokenize(prompt_tokens, render_special=True).encode()
    assert out.stdout.startswith(echoed)
    theirs = out.stdout[len(echoed):].rstrip(b"\n").decode()
    assert ours.text == theirs
    assert len(ours.tokens) == n


def test_seed_reproducibility(model: ohai.Model) -> None:
    opts = {"max_tokens": 24, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
    a = model.generate("Tell me a story about a cat.", seed=1234, **opts)
    b = model.generate("Tell me a story about a cat.", seed=1234, **opts)
    c = model.generate("Tell me a story about a cat.", seed=99, **opts)
    assert a.text == b.text
    assert a.text != c.text


def test_chat_knows_paris(model: ohai.Model) -> None:
    answer = model.chat([{"role": "user", "content": "What is the capital of France?"}], max_tokens=48, **GREEDY)
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop"


def test_chat_stream_matches_chat(model: ohai.Model) -> None:
    messages = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Name a fruit."}]
    full = model.chat(messages, max_tokens=32, **GREEDY)
    assert "".join(model.chat(messages, stream=True, max_tokens=32, **GREEDY)) == full.text


def test_stream_pieces_join_to_full_text(model: ohai.Model) -> None:
    prompt = "Write a haiku about the sea."
    full = model.generate(prompt, max_tokens=40, **GREEDY)
    pieces = list(model.stream(prompt, max_tokens=40, **GREEDY))
    assert len(pieces) > 5
    assert "".join(pieces) == full.text
    assert all(isinstance(p, str) and p for p in pieces)


def test_stream_never_splits_utf8(model: ohai.Model) -> None:
    # Emoji and CJK take several tokens per character in this vocabulary; pieces must still decode.
    prompt = "Repeat exactly: 🍎🍌🍒 日本語 🍎🍌🍒 日本語"
    pieces = list(model.stream(prompt, max_tokens=40, **GREEDY))
    for p in pieces:
        p.encode("utf-8")  # a lone surrogate or replacement would not round-trip cleanly
        assert "\ufffd" not in p


def test_stop_string_ends_generation(model: ohai.Model) -> None:
    prompt = "Count: 1, 2, 3, 4, 5, 6, 7, 8,"
    free = model.generate(prompt, max_tokens=24, **GREEDY)
    assert " 12" in free.text, free.text
    stopped = model.generate(prompt, max_tokens=24, stop=[" 12"], **GREEDY)
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(" 12")]
    assert "".join(model.stream(prompt, max_tokens=24, stop=" 12", **GREEDY)) == stopped.text


def test_max_tokens_is_respected(model: ohai.Model) -> None:
    c = model.generate("Write a long essay about rivers.", max_tokens=7, **GREEDY)
    assert c.finish_reason == "length"
    assert c.usage.completion_tokens == 7 == len(c.tokens)
    assert c.usage.prompt_tokens == len(model.tokenize("Write a long essay about rivers.", parse_special=True))
    assert c.timings.decode_ms > 0 and c.timings.decode_per_second > 0 and c.timings.prompt_ms > 0


def test_prompt_as_tokens(model: ohai.Model) -> None:
    tokens = model.tokenize("The sky is", parse_special=True)
    assert model.generate(tokens, max_tokens=8, **GREEDY).text == model.generate("The sky is", max_tokens=8, **GREEDY).text


def test_closing_a_stream_cancels(model: ohai.Model) -> None:
    pieces = model.chat(LONG_STORY, stream=True, max_tokens=2000, **GREEDY)
    got = [next(pieces) for _ in range(3)]
    pieces.close()
    assert len(got) == 3
    # The engine is free again at once: a new request does not wait for 2000 tokens.
    start = time.monotonic()
    assert model.generate("Hi", max_tokens=2, **GREEDY).usage.completion_tokens <= 2
    assert time.monotonic() - start < 30


def test_stream_keeps_its_model_open(default_model_path: str) -> None:
    # No reference to the Model is kept by the caller: the stream must still run to the end.
    pieces = ohai.Model(default_model_path, n_ctx=256).stream("The capital of France is", max_tokens=8, temperature=0)
    text = "".join(pieces)
    assert pieces.completion is not None and pieces.completion.finish_reason != "cancelled"
    assert text


def test_decode_rate_counts_decode_steps(model: ohai.Model) -> None:
    one = model.generate("Hello", max_tokens=1, temperature=0)
    assert one.timings.decode_per_second == 0.0  # no decode step happened: the token came from the prompt
    five = model.generate("Hello there, how", max_tokens=5, temperature=0)
    if five.usage.completion_tokens == 5:
        assert five.timings.decode_per_second == pytest.approx(4 / (five.timings.decode_ms / 1000), rel=1e-6)


def test_largest_seed_is_reproducible(model: ohai.Model) -> None:
    opts = {"max_tokens": 12, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "seed": 2**32 - 2}
    assert model.generate("Once", **opts).text == model.generate("Once", **opts).text
    with pytest.raises(ohai.InvalidRequestError, match="seed"):
        model.generate("Once", seed=2**32 - 1)


def test_cancel_from_another_thread(model: ohai.Model) -> None:
    pieces = model.chat(LONG_STORY, stream=True, max_tokens=1500, **GREEDY)
    threading.Timer(0.5, pieces.close).start()
    text = "".join(pieces)  # ends early, without an error
    assert pieces.completion is not None
    assert pieces.completion.finish_reason == "cancelled"
    assert pieces.completion.usage.completion_tokens < 1500
    assert pieces.completion.text == text


def test_four_threads_match_sequential(default_model_path: str) -> None:
    # One sequence at a time, so results are bit-identical; batched requests are compared in
    # test_batching.py (kernels for several rows round differently).
    model = ohai.Model(default_model_path, n_ctx=2048, threads=2, parallel=1)
    prompts = ["The moon is", "My favourite food is", "Python is a", "In 1969,"]
    sequential = [model.generate(p, max_tokens=20, **GREEDY).text for p in prompts]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = model.generate(prompts[i], max_tokens=20, **GREEDY).text
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert [results[i] for i in range(4)] == sequential


def test_embeddings_rank_similar_sentences_closer(model: ohai.Model) -> None:
    v = model.embed([
        "The cat sat on the mat.",
        "A cat was sitting on the rug.",
        "Quarterly revenue grew by eight percent.",
    ])
    assert v.shape == (3, model.info.n_embd)
    assert v.dtype.name == "float32"
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2]
    assert abs(float((v[0] ** 2).sum()) - 1.0) < 1e-4  # normalized by default
    single = model.embed("The cat sat on the mat.")
    assert single.shape == (model.info.n_embd,)
    assert abs(float(single @ v[0]) - 1.0) < 1e-4
    raw = model.embed("The cat sat on the mat.", normalize=False)
    assert abs(float((raw ** 2).sum()) - 1.0) > 1e-3


def test_openai_shapes(model: ohai.Model) -> None:
    c = model.create_completion("Hello", max_tokens=4, temperature=0)
    assert c["object"] == "text_completion"
    assert c["choices"][0]["finish_reason"] == "length"
    assert c["usage"]["total_tokens"] == c["usage"]["prompt_tokens"] + 4
    chat = model.create_chat_completion([{"role": "user", "content": "Say hi"}], max_tokens=8, temperature=0)
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["role"] == "assistant"
    chunks = list(model.create_chat_completion([{"role": "user", "content": "Say hi"}], stream=True, max_tokens=8,
                                                temperature=0))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks) == chat["choices"][0]["message"]["content"]
    text_chunks = list(model.create_completion("Hello", stream=True, max_tokens=4, temperature=0))
    assert "".join(ch["choices"][0]["text"] for ch in text_chunks) == c["choices"][0]["text"]
    assert text_chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_model_info(model: ohai.Model, default_model_path: str) -> None:
    info = model.info
    assert info.arch == "llama"
    assert 100_000_000 < info.n_params < 200_000_000
    assert info.size_bytes > 50_000_000
    assert info.n_ctx_train == 8192
    assert info.n_vocab == 49152
    assert info.file_type == "Q4_1"
    assert "im_start" in info.chat_template
    assert info.path == default_model_path


@pytest.mark.parametrize("text", ["hello world", "Grüße, 世界! 🍎", "  leading spaces", ""])
def test_tokenize_roundtrip(model: ohai.Model, text: str) -> None:
    tokens = model.tokenize(text, add_special=False)
    assert model.detokenize(tokens) == text


def test_special_tokens(model: ohai.Model) -> None:
    plain = model.tokenize("<|im_end|>", add_special=False, parse_special=False)
    special = model.tokenize("<|im_end|>", add_special=False, parse_special=True)
    assert len(special) == 1 and len(plain) > 1
    assert model.detokenize(special, render_special=True) == "<|im_end|>"


def test_vocab_only(default_model_path: str) -> None:
    with ohai.Model(default_model_path, vocab_only=True) as m:
        assert m.detokenize(m.tokenize("vocab only")) == "vocab only"
        with pytest.raises(ohai.OhaiError, match="vocab_only"):
            m.generate("hi")


def test_context_manager_closes(default_model_path: str) -> None:
    with ohai.Model(default_model_path, n_ctx=256) as m:
        assert m.generate("Hi", max_tokens=1, temperature=0).usage.completion_tokens <= 1
    assert m.closed
    with pytest.raises(ohai.OhaiError, match="closed"):
        m.generate("Hi")
    with pytest.raises(ohai.OhaiError, match="closed"):
        m.tokenize("Hi")
    m.close()  # idempotent


def test_close_while_another_thread_streams(default_model_path: str) -> None:
    m = ohai.Model(default_model_path, n_ctx=512)
    pieces = m.chat(LONG_STORY, stream=True, max_tokens=400, temperature=0)
    first = next(pieces)
    closer = threading.Thread(target=m.close)
    closer.start()
    rest = "".join(pieces)  # ends early and quietly: the request was cancelled by close()
    closer.join(timeout=60)
    assert not closer.is_alive()
    assert pieces.completion is not None and pieces.completion.finish_reason == "cancelled"
    assert pieces.completion.text == first + rest
    with pytest.raises(ohai.OhaiError, match="closed"):
        m.generate("Hi")
