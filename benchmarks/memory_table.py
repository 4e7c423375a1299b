#!/usr/bin/env python3
"""What a model needs in memory on a board: weights plus KV cache, from ohai's own accounting.

Weights: parameters x bits per weight of the quantization type (ggml's block sizes, from the `gguf`
package), plus the token embedding and output matrices, which llama.cpp keeps at a higher precision
in the usual recipes (here: Q6_K for the output, as llama.cpp's quantizer does by default; the
embedding at the type itself). KV cache: 2 (K and V) x layers x KV heads x head size x context x
bytes per element (f16: 2; q8_0: 34/32; q4_0: 18/32), the same formula the engine's paged KV
accounting uses (kv_blocks.cpp counts cells; a cell is one token's K and V across layers).

Architectures are given by their published hyperparameters; `--measure` also loads the default
model and reports the process's resident memory after a generation, to check the arithmetic
against a real load.

    python benchmarks/memory_table.py            # markdown table
    python benchmarks/memory_table.py --measure  # + measured RSS of the default model
"""
from __future__ import annotations

import argparse
import os
import resource
import sys

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

# name: (total parameters, n_layer, n_embd, n_vocab, n_head_kv, head_dim, tied embeddings)
ARCHS = {
    "SmolLM2-135M": (134_515_008, 30, 576, 49152, 3, 64, True),
    "Qwen2.5-0.5B": (494_032_768, 24, 896, 151936, 2, 64, True),
    "Llama-3.2-1B": (1_235_814_400, 16, 2048, 128256, 8, 64, True),
    "Qwen2.5-1.5B": (1_543_714_304, 28, 1536, 151936, 2, 128, True),
    "Llama-3.2-3B": (3_212_749_824, 28, 3072, 128256, 8, 128, True),
    "Llama-3-8B": (8_030_261_248, 32, 4096, 128256, 8, 128, False),
}
QUANTS = {"Q8_0": T.Q8_0, "Q4_K": T.Q4_K, "Q4_0": T.Q4_0}
KV_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def bits(t: T) -> float:
    block, size = GGML_QUANT_SIZES[t]
    return 8 * size / block


def weights_bytes(arch: str, quant: T) -> float:
    params, _, n_embd, n_vocab, _, _, tied = ARCHS[arch]
    embd = n_embd * n_vocab
    body = params - embd * (1 if tied else 2)
    out = 0 if tied else embd * bits(T.Q6_K) / 8
    return body * bits(quant) / 8 + embd * bits(quant) / 8 + out


def kv_bytes(arch: str, n_ctx: int, kv_type: str) -> float:
    _, n_layer, _, _, n_head_kv, head_dim, _ = ARCHS[arch]
    return 2 * n_layer * n_head_kv * head_dim * n_ctx * KV_BYTES[kv_type]


def gib(x: float) -> str:
    return f"{x / 2**30:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--measure", action="store_true")
    a = ap.parse_args()
    print(f"| model | weights | GiB | KV f16 @ {a.ctx} | KV q8_0 @ {a.ctx} | total (weights + KV f16) GiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for arch in ARCHS:
        for qname, q in QUANTS.items():
            w = weights_bytes(arch, q)
            kv = kv_bytes(arch, a.ctx, "f16")
            print(f"| {arch} | {qname} | {gib(w)} | {gib(kv)} | {gib(kv_bytes(arch, a.ctx, 'q8_0'))} | {gib(w + kv)} |")
    if a.measure:
        import ohai

        path = ohai.default_model_path()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with ohai.Model(path, n_ctx=a.ctx, threads=2, parallel=1) as m:
            m.generate("Hello", max_tokens=8, temperature=0)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"\nmeasured: {os.path.basename(path)} (file {os.path.getsize(path) / 2**20:.1f} MiB), n_ctx {a.ctx}: "
              f"peak RSS grew by {(after - before) / 2**20:.1f} MiB; predicted weights "
              f"{weights_bytes('SmolLM2-135M', T.Q4_1) / 2**20:.1f} MiB + KV f16 "
              f"{kv_bytes('SmolLM2-135M', a.ctx, 'f16') / 2**20:.1f} MiB (+ compute buffers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
