"""Build a tiny llama-architecture GGUF with random weights for tests.

The model is small enough to write in well under a second and to run a NumPy
reference forward pass on (see reference_llama.py), yet it carries a real
32000-token SentencePiece vocabulary copied from llama.cpp's vocab-only test
file, so tokenization works exactly as it would for a real llama model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VOCAB_GGUF = REPO_ROOT / "third_party" / "llama.cpp" / "models" / "ggml-vocab-llama-spm.gguf"

RMS_NORM_EPS = 1e-5
ROPE_FREQ_BASE = 10000.0

# Standard deviations of the random weights. Chosen (not copied from any
# trained model) so that, after RMSNorm brings activations to unit RMS:
#   * q.k / sqrt(head_dim) has a std of about 1, so attention is clearly
#     non-uniform and a wrong RoPE or a wrong causal mask changes the output;
#   * the attention and FFN branches add O(1) updates to a residual stream of
#     O(1) embeddings, so every layer matters;
#   * logits have a std of roughly 2: well spread (a clear argmax), but far
#     from anything that would saturate a softmax or lose float precision.
_EMBD_STD = 1.0
_NORM_STD = 0.1  # norm weights are 1 + N(0, 0.1): near 1 but not trivially 1
_QK_STD = 0.15
_VO_STD = 0.15
_FFN_STD = 0.12
_OUT_STD = 0.25


def _copy_tokenizer_kv(writer: gguf.GGUFWriter, vocab_gguf: Path) -> int:
    """Copy every tokenizer.* key from a vocab-only GGUF; return n_vocab."""
    reader = gguf.GGUFReader(vocab_gguf)
    n_vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main_type = gguf.GGUFValueType(field.types[0])
        value: Any
        sub_type: gguf.GGUFValueType | None = None
        if main_type == gguf.GGUFValueType.ARRAY:
            sub_type = gguf.GGUFValueType(field.types[-1])
            if sub_type == gguf.GGUFValueType.STRING:
                # Raw bytes, not decoded str: keeps every token byte-exact.
                value = [bytes(field.parts[i]) for i in field.data]
            else:
                value = field.contents()
            if key == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        elif main_type == gguf.GGUFValueType.STRING:
            value = bytes(field.parts[-1])
        else:
            value = field.contents()
        writer.add_key_value(key, value, main_type, sub_type)
    if n_vocab == 0:
        raise ValueError(f"{vocab_gguf} has no tokenizer.ggml.tokens array")
    return n_vocab


def make_tiny_llama(
    path: str | Path,
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_layer: int = 2,
    n_ff: int = 128,
    n_ctx_train: int = 256,
    vocab_gguf: str | Path = DEFAULT_VOCAB_GGUF,
    f16: bool = False,
) -> Path:
    """Write a random-weight llama GGUF to `path` and return the path.

    Weights are F32 (2-D weights F16 if `f16`; norms always F32, as llama.cpp
    expects). Keep n_embd and n_ff multiples of 32 so the file can be
    quantized to Q8_0 / Q4_0, whose blocks are 32 values along a row.
    """
    if n_embd % n_head != 0:
        raise ValueError("n_embd must be divisible by n_head")
    if n_head % n_head_kv != 0:
        raise ValueError("n_head must be divisible by n_head_kv")
    head_dim = n_embd // n_head
    if head_dim % 2 != 0:
        raise ValueError("head_dim must be even for RoPE")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    writer = gguf.GGUFWriter(path, arch="llama")  # also writes general.architecture
    writer.add_name("ohai-tiny-llama")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(RMS_NORM_EPS)
    writer.add_rope_freq_base(ROPE_FREQ_BASE)
    n_vocab = _copy_tokenizer_kv(writer, Path(vocab_gguf))

    matrix_dtype = np.float16 if f16 else np.float32

    def matrix(name: str, rows: int, cols: int, std: float) -> None:
        # NumPy (rows, cols) is ggml ne = [cols, rows]: llama.cpp's
        # create_tensor({n_in, n_out}) is NumPy (n_out, n_in), and y = W @ x.
        w = rng.normal(0.0, std, size=(rows, cols)).astype(matrix_dtype)
        writer.add_tensor(name, w)

    def norm(name: str) -> None:
        w = 1.0 + rng.normal(0.0, _NORM_STD, size=n_embd)
        writer.add_tensor(name, w.astype(np.float32))

    n_embd_kv = head_dim * n_head_kv
    matrix("token_embd.weight", n_vocab, n_embd, _EMBD_STD)
    for il in range(n_layer):
        norm(f"blk.{il}.attn_norm.weight")
        matrix(f"blk.{il}.attn_q.weight", n_embd, n_embd, _QK_STD)
        matrix(f"blk.{il}.attn_k.weight", n_embd_kv, n_embd, _QK_STD)
        matrix(f"blk.{il}.attn_v.weight", n_embd_kv, n_embd, _VO_STD)
        matrix(f"blk.{il}.attn_output.weight", n_embd, n_embd, _VO_STD)
        norm(f"blk.{il}.ffn_norm.weight")
        matrix(f"blk.{il}.ffn_gate.weight", n_ff, n_embd, _FFN_STD)
        matrix(f"blk.{il}.ffn_up.weight", n_ff, n_embd, _FFN_STD)
        matrix(f"blk.{il}.ffn_down.weight", n_embd, n_ff, _FFN_STD)
    norm("output_norm.weight")
    matrix("output.weight", n_vocab, n_embd, _OUT_STD)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
