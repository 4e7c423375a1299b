"""Many requests on one model: continuous batching, prefix cache, paged KV accounting with
preemption, cancellation, the queue bound and statistics, through the Python API."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pytest

import ohai

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "List three colors:",
    "def fibonacci(n):",
    "Water boils at",
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. Then the fox",
    "My favourite food is",
    "In 1492, Christopher Columbus",
]


@pytest.fixture(scope="module")
def alone(default_model_path: str) -> ohai.Model:
    """One request at a time: the reference every batched result is compared with."""
    with ohai.Model(default_model_path, n_ctx=2048, threads=2, parallel=1) as m:
        yield m


@pytest.fixture(scope="module")
def batched(default_model_path: str) -> ohai.Model:
    with ohai.Model(default_model_path, n_ctx=2048, threads=2, parallel=8) as m:
        yield m


def _concurrently(calls: Sequence[Callable[[], object]]) -> list[object]:
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    return results


def _eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture(scope="module")
def kernel_difference(alone: ohai.Model) -> float:
    """How far two kernel paths of llama.cpp may move a logit, measured on this machine: one long
    sequence (more than 64 tokens, where ggml switches to its batched matrix kernels) evaluated in
    one batch and token by token. Batched serving takes both kinds of paths (several sequences'
    rows in one product; a preempted request's tokens read again in one batch)."""
    prompt = alone.tokenize(PROMPTS[1])
    seq = prompt + alone.generate(prompt, max_tokens=72, temperature=0).tokens
    difference = float(np.abs(alone.logits(seq, prompt_tokens=1) - alone.logits(seq)).max())
    assert 0 < difference < 5, difference
    return difference


def assert_same_or_near_tie(reference: ohai.Model, tolerance: float, prompt: list[int], expected: list[int],
                            got: list[int]) -> None:
    """Batched decoding goes through other kernels than token-by-token decoding, whose float
    results differ (see kernel_difference). A greedy choice between close logits may then flip;
    anything else is a bug. So the texts must match up to a token where the batched choice's
    logit, in the reference, was within twice the measured difference of the best one (both sides
    may have moved by that much)."""
    if got == expected:
        return
    i = next((k for k, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
    assert i < len(expected) and i < len(got), f"one result is a prefix of the other: {expected} vs {got}"
    row = reference.logits(prompt + expected[: i + 1], prompt_tokens=len(prompt))[len(prompt) - 1 + i]
    behind = float(row.max() - row[got[i]])
    assert behind <= 2 * tolerance, (
        f"diverged at token {i}: the batched choice was {behind:.4f} behind the best logit, more than twice "
        f"the measured kernel difference {tolerance:.4f}")


@pytest.mark.parametrize("n", [2, 4, 8])
def test_concurrent_greedy_equals_alone(alone: ohai.Model, batched: ohai.Model, n: int, kernel_difference: float) -> None:
    prompts = [alone.tokenize(p) for p in PROMPTS[:n]]
    lengths = [24 + 8 * (k % 3) for k in range(n)]  # mixed prompt and output lengths
    expected = [alone.generate(p, max_tokens=m, temperature=0).tokens for p, m in zip(prompts, lengths)]
    got = _concurrently([lambda p=p, m=m: batched.generate(p, max_tokens=m, temperature=0)
                         for p, m in zip(prompts, lengths)])
    for p, e, g in zip(prompts, expected, got):
        assert isinstance(g, ohai.Completion)
        assert_same_or_near_tie(alone, kernel_difference, p, e, g.tokens)


def test_seeded_sampling_is_per_request(alone: ohai.Model) -> None:
    """Every request draws from its own seeded generator, whatever the scheduler runs beside it:
    a seeded request queued among unseeded sampling requests gives the text it gives alone. (With
    several sequences per batch the text may still differ now and then: batched kernels move the
    logits slightly, see kernel_difference, and with them a sampled token.)"""
    opts = {"max_tokens": 24, "temperature": 0.9, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
    reference = alone.generate(PROMPTS[1], seed=4321, **opts).text
    noise = [lambda p=p: alone.generate(p, max_tokens=16, temperature=1.0) for p in PROMPTS[2:5]]
    results = _concurrently([*noise[:2], lambda: alone.generate(PROMPTS[1], seed=4321, **opts), noise[2]])
    assert isinstance(results[2], ohai.Completion) and results[2].text == reference
    assert alone.generate(PROMPTS[1], seed=1234, **opts).text != reference


def test_cancelling_one_stream_leaves_the_others(alone: ohai.Model, batched: ohai.Model, kernel_difference: float) -> None:
    prompt = alone.tokenize(PROMPTS[2])
    expected = alone.generate(prompt, max_tokens=24, temperature=0).tokens
    before = batched.stats()["requests_cancelled"]
    doomed = batched.stream(PROMPTS[1], max_tokens=200, temperature=0)
    keep = batched.stream(prompt, max_tokens=24, temperature=0)
    next(doomed)
    doomed.close()
    assert "".join(keep) is not None and keep.completion is not None
    assert_same_or_near_tie(alone, kernel_difference, prompt, expected, keep.completion.tokens)
    assert _eventually(lambda: batched.stats()["requests_cancelled"] == before + 1)
    assert _eventually(lambda: batched.stats()["running"] == 0)


def test_prefix_cache_reuses_a_shared_system_prompt(alone: ohai.Model, default_model_path: str) -> None:
    system = "You are a helpful assistant who answers briefly and precisely. " * 6
    with ohai.Model(default_model_path, n_ctx=2048, threads=2, parallel=2) as m:
        first = m.chat([{"role": "system", "content": system}, {"role": "user", "content": "Name a planet."}],
                       max_tokens=12, temperature=0)
        second = m.chat([{"role": "system", "content": system}, {"role": "user", "content": "Name a river."}],
                        max_tokens=12, temperature=0)
        assert first.usage.cached_prompt_tokens == 0
        assert second.usage.cached_prompt_tokens >= 60
        assert second.usage.cached_prompt_tokens < second.usage.prompt_tokens
        assert _eventually(lambda: m.stats()["requests_completed"] == 2)
        stats = m.stats()
        assert stats["prompt_tokens_cached"] >= second.usage.cached_prompt_tokens
        assert stats["kv_blocks_cached"] > 0
    # Served from the cache, the answer is the one computed from scratch.
    fresh = alone.chat([{"role": "system", "content": system}, {"role": "user", "content": "Name a river."}],
                       max_tokens=12, temperature=0)
    assert second.text == fresh.text


def test_kv_pressure_preempts_and_resumes(alone: ohai.Model, default_model_path: str, kernel_difference: float) -> None:
    prompts = [alone.tokenize(p) for p in PROMPTS[:4]]
    expected = [alone.generate(p, max_tokens=60, temperature=0).tokens for p in prompts]
    # 256 cells for four requests that grow to ~80 tokens each: they cannot all fit at once.
    with ohai.Model(default_model_path, n_ctx=256, threads=2, parallel=4) as m:
        got = _concurrently([lambda p=p: m.generate(p, max_tokens=60, temperature=0) for p in prompts])
        assert _eventually(lambda: m.stats()["requests_completed"] == 4)
        stats = m.stats()
        assert stats["preemptions"] >= 1 and stats["requests_failed"] == 0
    for p, e, g in zip(prompts, expected, got):
        assert isinstance(g, ohai.Completion) and g.finish_reason in ("stop", "length")
        assert_same_or_near_tie(alone, kernel_difference, p, e, g.tokens)


def test_queue_bound_raises_overloaded(default_model_path: str) -> None:
    with ohai.Model(default_model_path, n_ctx=512, threads=2, parallel=1, max_queued=1) as m:
        running = m.stream(PROMPTS[1], max_tokens=300, temperature=0)
        next(running)
        waiting = m.stream(PROMPTS[2], max_tokens=4, temperature=0)
        with pytest.raises(ohai.OverloadedError, match="busy"):
            m.generate(PROMPTS[3], max_tokens=4)
        assert m.stats()["requests_rejected"] == 1  # counted when refused, not between steps
        running.close()
        assert len("".join(waiting)) > 0 and waiting.completion is not None


@pytest.mark.parametrize("kv_type", ["q8_0", "q4_0"])
def test_quantized_kv_cache(default_model_path: str, kv_type: str) -> None:
    with ohai.Model(default_model_path, n_ctx=512, threads=2, kv_type=kv_type) as m:
        answer = m.chat([{"role": "user", "content": "What is the capital of France?"}], max_tokens=16, temperature=0)
        assert "Paris" in answer.text


def test_embeddings_and_logits_leave_running_streams_alone(alone: ohai.Model, batched: ohai.Model, kernel_difference: float) -> None:
    prompt = alone.tokenize(PROMPTS[4])
    expected = alone.generate(prompt, max_tokens=32, temperature=0).tokens
    stream = batched.stream(prompt, max_tokens=32, temperature=0)
    next(stream)
    vectors = batched.embed(["one text", "another text"])
    logits = batched.logits(alone.tokenize("Hello world"))
    rest = list(stream)
    assert vectors.shape[0] == 2 and logits.shape[0] == len(alone.tokenize("Hello world"))
    assert rest and stream.completion is not None
    assert_same_or_near_tie(alone, kernel_difference, prompt, expected, stream.completion.tokens)


def test_bad_engine_options(default_model_path: str) -> None:
    for options, message in (({"parallel": 65}, "parallel"), ({"parallel": -1}, "parallel"),
                             ({"kv_type": "q5_9"}, "kv_type"), ({"max_queued": -1}, "max_queued"),
                             ({"parallel": "4"}, "parallel")):
        with pytest.raises(ohai.InvalidRequestError, match=message):
            ohai.Model(default_model_path, **options)  # type: ignore[arg-type]


def test_stats_describe_the_engine(batched: ohai.Model) -> None:
    stats = batched.stats()
    assert stats["parallel"] == batched.parallel == 8
    assert stats["kv_blocks_total"] * stats["kv_block_size"] >= batched.n_ctx
    for key in ("running", "queued", "kv_blocks_used", "kv_blocks_cached", "requests_completed", "requests_cancelled",
                "requests_failed", "requests_rejected", "preemptions", "tokens_generated", "prompt_tokens_decoded",
                "prompt_tokens_cached"):
        assert isinstance(stats[key], int) and stats[key] >= 0, key
