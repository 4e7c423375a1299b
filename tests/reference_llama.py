"""NumPy reference forward pass for llama-architecture GGUF files.

Written from the math of the llama architecture as llama.cpp runs it
(src/models/llama.cpp, ggml's CPU rope), in float64, with no KV cache: every
position is computed from scratch, so it is an independent oracle for the
engine's batched and incremental (KV-cached) decoding.

Only what the tiny test model uses is supported: no biases, no rope scaling,
no rope_freqs tensor, head_dim == n_rot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# How RoPE pairs the dimensions of a head. llama.cpp uses "norm" for arch
# llama (LLAMA_ROPE_TYPE_NORM: adjacent pairs). "neox" (first half with
# second half) and "none" exist only so tests can show a wrong RoPE is caught.
RopeMode = Literal["norm", "neox", "none"]


@dataclass(frozen=True)
class LlamaHParams:
    n_vocab: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_layer: int
    n_ff: int
    n_rot: int
    rms_eps: float
    rope_base: float


@dataclass
class LlamaWeights:
    hparams: LlamaHParams
    tensors: dict[str, F64]


def _field(reader: gguf.GGUFReader, key: str, default: float | None = None) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if default is None:
            raise KeyError(f"GGUF is missing metadata key {key!r}")
        return default
    return field.contents()


def _int(reader: gguf.GGUFReader, key: str, default: int | None = None) -> int:
    return int(_field(reader, key, default))


def _float(reader: gguf.GGUFReader, key: str, default: float | None = None) -> float:
    return float(_field(reader, key, default))


def load_llama(gguf_path: str | Path) -> LlamaWeights:
    """Read hyperparameters and all tensors (dequantized to float64)."""
    reader = gguf.GGUFReader(gguf_path)
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"expected arch 'llama', got {arch!r}")

    tensors: dict[str, F64] = {}
    for t in reader.tensors:
        # dequantize() handles F32/F16 (a plain view) and the quantized block
        # types, returning the NumPy shape (reverse of ggml's ne).
        data = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        tensors[t.name] = np.asarray(data, dtype=np.float64).reshape(shape)

    n_vocab, n_embd = tensors["token_embd.weight"].shape
    n_head = _int(reader, "llama.attention.head_count")
    hp = LlamaHParams(
        n_vocab=n_vocab,
        n_embd=_int(reader, "llama.embedding_length"),
        n_head=n_head,
        n_head_kv=_int(reader, "llama.attention.head_count_kv", n_head),
        n_layer=_int(reader, "llama.block_count"),
        n_ff=_int(reader, "llama.feed_forward_length"),
        n_rot=_int(reader, "llama.rope.dimension_count", n_embd // n_head),
        rms_eps=_float(reader, "llama.attention.layer_norm_rms_epsilon"),
        rope_base=_float(reader, "llama.rope.freq_base", 10000.0),
    )
    if hp.n_embd != n_embd:
        raise ValueError("llama.embedding_length disagrees with token_embd.weight")
    if hp.n_rot != hp.n_embd // hp.n_head:
        raise ValueError("reference supports only n_rot == head_dim")
    return LlamaWeights(hparams=hp, tensors=tensors)


def rms_norm(x: F64, weight: F64, eps: float) -> F64:
    # ggml_rms_norm: x / sqrt(mean(x^2) + eps), then the elementwise weight.
    out: F64 = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight
    return out


def apply_rope(x: F64, positions: npt.NDArray[np.int64], base: float, mode: RopeMode = "norm") -> F64:
    """Rotate x of shape [n_tokens, n_heads, head_dim] by token position.

    Pair i (i = 0 .. head_dim/2-1) is rotated by theta = pos * base^(-2i/head_dim),
    as ggml_rope_cache_init builds it (theta_scale = base^(-2/n_dims)).
    "norm" pairs (x[2i], x[2i+1]); "neox" pairs (x[i], x[i + head_dim/2]).
    """
    if mode == "none":
        return x
    head_dim = x.shape[-1]
    half = head_dim // 2
    inv_freq = base ** (-2.0 * np.arange(half) / head_dim)
    theta = positions[:, None].astype(np.float64) * inv_freq[None, :]  # [n_tokens, half]
    cos = np.cos(theta)[:, None, :]
    sin = np.sin(theta)[:, None, :]
    if mode == "norm":
        x0, x1 = x[..., 0::2], x[..., 1::2]
    else:
        x0, x1 = x[..., :half], x[..., half:]
    r0 = x0 * cos - x1 * sin
    r1 = x0 * sin + x1 * cos
    out = np.empty_like(x)
    if mode == "norm":
        out[..., 0::2], out[..., 1::2] = r0, r1
    else:
        out[..., :half], out[..., half:] = r0, r1
    return out


def silu(x: F64) -> F64:
    return x / (1.0 + np.exp(-x))


def forward(
    weights: LlamaWeights,
    tokens: Sequence[int],
    *,
    positions: Sequence[int] | None = None,
    rope: RopeMode = "norm",
    causal: bool = True,
) -> F64:
    """Logits [len(tokens), n_vocab]; token i sits at positions[i] (default i).

    Attention is causal over the order of `tokens`, whatever the positions.
    `rope` and `causal` default to what llama.cpp does; the other values are
    deliberately wrong variants for checking that tests can tell them apart.
    """
    hp = weights.hparams
    w = weights.tensors
    toks = np.asarray(tokens, dtype=np.int64)
    if toks.ndim != 1 or toks.size == 0:
        raise ValueError("tokens must be a non-empty 1-D sequence")
    if toks.min() < 0 or toks.max() >= hp.n_vocab:
        raise ValueError("token id out of range")
    n = toks.size
    head_dim = hp.n_embd // hp.n_head
    group = hp.n_head // hp.n_head_kv  # query heads per KV head
    pos = np.arange(n, dtype=np.int64) if positions is None else np.asarray(positions, dtype=np.int64)
    if pos.shape != toks.shape:
        raise ValueError("positions must have one entry per token")
    scale = 1.0 / np.sqrt(head_dim)
    # Query i sees keys j <= i; -inf elsewhere, like llama.cpp's KQ mask.
    mask = np.where(np.tril(np.ones((n, n), dtype=bool)) | (not causal), 0.0, -np.inf)

    x = w["token_embd.weight"][toks]  # [n, n_embd]
    for il in range(hp.n_layer):
        p = f"blk.{il}."
        h = rms_norm(x, w[p + "attn_norm.weight"], hp.rms_eps)
        q = (h @ w[p + "attn_q.weight"].T).reshape(n, hp.n_head, head_dim)
        k = (h @ w[p + "attn_k.weight"].T).reshape(n, hp.n_head_kv, head_dim)
        v = (h @ w[p + "attn_v.weight"].T).reshape(n, hp.n_head_kv, head_dim)
        q = apply_rope(q, pos, hp.rope_base, rope)
        k = apply_rope(k, pos, hp.rope_base, rope)
        # GQA: query head hq reads KV head hq // group (ggml broadcasts the
        # KV heads over consecutive query heads this way).
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) * scale + mask[None]
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        attn = np.einsum("hqk,khd->qhd", probs, v).reshape(n, hp.n_embd)
        x = x + attn @ w[p + "attn_output.weight"].T

        h = rms_norm(x, w[p + "ffn_norm.weight"], hp.rms_eps)
        gate = h @ w[p + "ffn_gate.weight"].T
        up = h @ w[p + "ffn_up.weight"].T
        x = x + (silu(gate) * up) @ w[p + "ffn_down.weight"].T

    h = rms_norm(x, w["output_norm.weight"], hp.rms_eps)
    # No output.weight means tied embeddings, as llama.cpp falls back to.
    out_w = w.get("output.weight", w["token_embd.weight"])
    return h @ out_w.T


def reference_logits(gguf_path: str | Path, tokens: Sequence[int]) -> F64:
    """Float64 logits [len(tokens), n_vocab] of the model in `gguf_path`."""
    return forward(load_llama(gguf_path), tokens)
