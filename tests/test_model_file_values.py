"""Model files that are well-formed but carry values llama.cpp would abort on at the first decode.

Every test here generates many variants of a working model: hyperparameters swept over hostile values,
per-layer arrays with one bad element, counts whose products wrap 32-bit arithmetic, and tensors retyped to
every other ggml type. Each variant must either load AND generate, or be refused with ohai.ModelLoadError —
never take the process down. Variants run in a child process (many per child, in order), so an abort shows
up here as a failure naming the variant and the signal instead of a dead pytest.
"""
from __future__ import annotations

import json
import math
import os
import select
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# --- GGUF editing --------------------------------------------------------------------------------------------

# GGUF value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q",
           F64: "d"}

# ggml tensor types: (block size, bytes per block); the removed ids (4, 5, 31-33, 36-38) are left out.
GGML_TYPES: dict[int, tuple[str, int, int]] = {}


def _ggml_types() -> dict[int, tuple[str, int, int]]:
    if not GGML_TYPES:
        import gguf

        for t, (block, size) in gguf.GGML_QUANT_SIZES.items():
            GGML_TYPES[int(t)] = (t.name, block, size)
    return GGML_TYPES


def _string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def encode_value(vtype: int, value: Any, elem: int | None = None) -> bytes:
    """A metadata value as stored after its key: the type, then the value (arrays: element type, count, items)."""
    if vtype == STR:
        return struct.pack("<I", STR) + _string(value)
    if vtype == ARR:
        assert elem is not None
        items = b"".join(_string(v) if elem == STR else struct.pack("<" + _SCALAR[elem], v) for v in value)
        return struct.pack("<IIQ", ARR, elem, len(value)) + items
    return struct.pack("<I" + _SCALAR[vtype], vtype, value)


@dataclass
class TensorEntry:
    name: str
    shape: list[int]
    ttype: int
    offset: int
    type_at: int = -1     # where the type field sits in the parsed file

    def encode(self) -> bytes:
        return (_string(self.name) + struct.pack("<I", len(self.shape)) + struct.pack(f"<{len(self.shape)}q", *self.shape)
                + struct.pack("<IQ", self.ttype, self.offset))

    def nbytes(self) -> int:
        _, block, size = _ggml_types()[self.ttype]
        n = 1
        for d in self.shape:
            n *= d
        return n // block * size


@dataclass
class Gguf:
    """A GGUF split into its parts. Edits that keep every byte in place come back as patches (cheap to apply to a
    copy of a large file); anything else is written out anew by `to_bytes`."""

    raw: memoryview
    version: int
    kv: dict[str, tuple[int, bytes]]   # key -> (offset of the encoded value, encoded value: type + payload)
    tensors: list[TensorEntry]
    data_start: int
    alignment: int = 32
    payloads: dict[str, bytes] = field(default_factory=dict)  # replaced tensor data, by name
    relayout: bool = False                                     # tensors were dropped
    original: tuple[dict[str, tuple[int, bytes]], list[int]] = field(default_factory=lambda: ({}, []))

    def __post_init__(self) -> None:
        self.original = (dict(self.kv), [t.ttype for t in self.tensors])

    @classmethod
    def parse(cls, data: bytes) -> Gguf:
        raw = memoryview(data)
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
        pos, kv = 24, {}
        for _ in range(n_kv):
            klen = struct.unpack_from("<Q", data, pos)[0]
            key = bytes(raw[pos + 8:pos + 8 + klen]).decode()
            start = pos = pos + 8 + klen
            pos = _skip_value(data, pos)
            kv[key] = (start, bytes(raw[start:pos]))
        tensors = []
        for _ in range(n_tensors):
            nlen = struct.unpack_from("<Q", data, pos)[0]
            name = bytes(raw[pos + 8:pos + 8 + nlen]).decode()
            pos += 8 + nlen
            n_dims = struct.unpack_from("<I", data, pos)[0]
            shape = list(struct.unpack_from(f"<{n_dims}q", data, pos + 4))
            pos += 4 + 8 * n_dims
            ttype, offset = struct.unpack_from("<IQ", data, pos)
            tensors.append(TensorEntry(name, shape, ttype, offset, pos))
            pos += 12
        alignment = struct.unpack_from("<I", kv["general.alignment"][1], 4)[0] if "general.alignment" in kv else 32
        return cls(raw, version, kv, tensors, (pos + alignment - 1) // alignment * alignment, alignment)

    def copy(self) -> Gguf:
        """An independent copy for editing (the file's bytes are shared, not copied)."""
        tensors = [TensorEntry(t.name, list(t.shape), t.ttype, t.offset, t.type_at) for t in self.tensors]
        return Gguf(self.raw, self.version, dict(self.kv), tensors, self.data_start, self.alignment)

    def tensor(self, name: str) -> TensorEntry:
        return next(t for t in self.tensors if t.name == name)

    def set(self, key: str, encoded: bytes | None) -> None:
        if encoded is None:
            self.kv.pop(key, None)
        else:
            self.kv[key] = (self.kv[key][0] if key in self.kv else -1, encoded)

    def retype(self, name: str, ttype: int, seed: int = 0) -> None:
        """Declares tensor `name` as `ttype`; if that changes its size, its data becomes random bytes."""
        t = self.tensor(name)
        before = t.nbytes()
        t.ttype = ttype
        if t.nbytes() != before:
            self.replace(name, ttype, _random_bytes(t.nbytes(), seed))

    def replace(self, name: str, ttype: int, data: bytes, shape: list[int] | None = None) -> None:
        t = self.tensor(name)
        t.ttype, t.shape = ttype, shape or t.shape
        assert len(data) == t.nbytes(), (name, len(data), t.nbytes())
        self.payloads[name] = data

    def drop(self, name: str) -> None:
        self.tensors.remove(self.tensor(name))
        self.relayout = True

    def patches(self) -> list[tuple[int, bytes]] | None:
        """The edits as (offset, bytes) patches of the parsed file, or None if they move anything."""
        if self.payloads or self.relayout:
            return None
        kv, types = self.original
        if list(kv) != list(self.kv):
            return None
        out = []
        for key, (at, encoded) in self.kv.items():
            if encoded != kv[key][1]:
                if len(encoded) != len(kv[key][1]):
                    return None
                out.append((at, encoded))
        out += [(t.type_at, struct.pack("<I", t.ttype)) for t, old in zip(self.tensors, types) if t.ttype != old]
        return out

    def to_bytes(self) -> bytes:
        pad = lambda n: (n + self.alignment - 1) // self.alignment * self.alignment  # noqa: E731
        data = self.raw[self.data_start:]
        if self.payloads or self.relayout:  # lay the data out anew
            chunks, offset = [], 0
            for t in self.tensors:
                blob = self.payloads.get(t.name)
                if blob is None:
                    blob = bytes(data[t.offset:t.offset + t.nbytes()])
                t.offset = offset
                chunks.append(blob + b"\0" * (pad(len(blob)) - len(blob)))
                offset += len(chunks[-1])
            data, self.payloads, self.relayout = memoryview(b"".join(chunks)), {}, False
        head = (b"GGUF" + struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv))
                + b"".join(_string(k) + v for k, (_, v) in self.kv.items())
                + b"".join(t.encode() for t in self.tensors))
        return head + b"\0" * (pad(len(head)) - len(head)) + data


def _random_bytes(n: int, seed: int) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _skip_value(data: bytes, pos: int) -> int:
    vtype = struct.unpack_from("<I", data, pos)[0]
    pos += 4
    if vtype == STR:
        return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
    if vtype != ARR:
        return pos + struct.calcsize("<" + _SCALAR[vtype])
    elem, count = struct.unpack_from("<IQ", data, pos)
    pos += 12
    if elem != STR:
        return pos + count * struct.calcsize("<" + _SCALAR[elem])
    for _ in range(count):
        pos += 8 + struct.unpack_from("<Q", data, pos)[0]
    return pos


# --- variants and the child process that tries them ----------------------------------------------------------

@dataclass
class Variant:
    """How to derive one model file from a base file: metadata changes (None deletes a key) and retyped tensors."""

    label: str
    base: str
    kv: dict[str, list[Any] | None] = field(default_factory=dict)   # key -> [vtype, value(, elem type)]
    retype: dict[str, int] = field(default_factory=dict)            # tensor name -> ggml type
    drop: list[str] = field(default_factory=list)                    # tensors to leave out

    def edit(self, base: bytes | Gguf) -> Gguf:
        g = base.copy() if isinstance(base, Gguf) else Gguf.parse(base)
        for key, spec in self.kv.items():
            g.set(key, None if spec is None else encode_value(*spec))
        for name, ttype in self.retype.items():
            g.retype(name, ttype)
        for name in self.drop:
            g.drop(name)
        return g

    def write(self, path: Path) -> None:
        Path(path).write_bytes(self.edit(Path(self.base).read_bytes()).to_bytes())


_MARK = "@variant"


class _Files:
    """Child-process side: puts each variant in a file. In-place edits patch a copy of the base and are undone
    afterwards, so a large base is copied once, not once per variant."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.bases: dict[str, tuple[bytes, Gguf, str]] = {}

    def make(self, v: Variant) -> tuple[str, Any]:
        if v.base not in self.bases:
            data = Path(v.base).read_bytes()
            copy = os.path.join(self.workdir, f"base{len(self.bases)}.gguf")
            Path(copy).write_bytes(data)
            self.bases[v.base] = (data, Gguf.parse(data), copy)
        data, parsed, copy = self.bases[v.base]
        g = v.edit(parsed)
        patches = g.patches()
        if patches is None:
            path = os.path.join(self.workdir, "variant.gguf")
            Path(path).write_bytes(g.to_bytes())
            return path, lambda: os.unlink(path)
        with open(copy, "r+b") as f:
            for at, blob in patches:
                os.pwrite(f.fileno(), blob, at)

        def undo() -> None:
            with open(copy, "r+b") as f:
                for at, blob in patches:
                    os.pwrite(f.fileno(), data[at:at + len(blob)], at)
        return copy, undo


def _try_variants(jobs: list[dict[str, Any]], workdir: str) -> None:
    """Child-process side: loads each variant and generates two tokens; one result line per variant."""
    import ohai

    files = _Files(workdir)
    for job in jobs:
        v = Variant(**job)
        path, undo = files.make(v)
        print(_MARK, v.label, "start", sep="\t", flush=True)
        try:
            with ohai.Model(path, n_ctx=64, threads=1) as m:
                m.generate("Hello", max_tokens=2, temperature=0)
            outcome, message = "ok", ""
        except ohai.ModelLoadError as e:
            outcome, message = "refused", str(e)
        except ohai.OhaiError as e:  # e.g. a context too small for the prompt: an error, not a crash
            outcome, message = "error", f"{type(e).__name__}: {e}"
        print(_MARK, v.label, outcome, " ".join(message.split()), sep="\t", flush=True)
        undo()


_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from test_model_file_values import _try_variants
_try_variants(json.load(sys.stdin), sys.argv[1])
"""


@dataclass
class Outcome:
    kind: str       # "ok", "refused", "error" or "crashed"
    message: str


VARIANT_TIMEOUT_S = 60   # one load and a two-token generation of a tiny or 135M model take well under a second


def run_variants(variants: list[Variant], tmp: Path) -> dict[str, Outcome]:
    """Runs the variants in child processes; when a child dies or hangs, records the variant it was on and goes
    on with the rest in a new child."""
    assert len({v.label for v in variants}) == len(variants), "variant labels must be unique"
    results: dict[str, Outcome] = {}
    pending = list(variants)
    # No probe decode in a helper process: what is tested here is that the up-front checks refuse these files,
    # and an abort they miss must show up as one. No gdb backtrace per abort either.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GGML_NO_BACKTRACE": "1", "OHAI_PROBE": "0"}
    while pending:
        with tempfile.TemporaryDirectory(dir=tmp) as work, open(Path(work) / "stderr", "w+") as err:
            child = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(Path(__file__).parent)), work],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
            assert child.stdin and child.stdout
            child.stdin.write(json.dumps([v.__dict__ for v in pending]))
            child.stdin.close()
            started, hung = None, False
            while True:
                ready, _, _ = select.select([child.stdout], [], [], VARIANT_TIMEOUT_S)
                if not ready:
                    hung = True
                    child.kill()
                    break
                line = child.stdout.readline()
                if not line:
                    break
                if not line.startswith(_MARK + "\t"):
                    continue   # native output that went to stdout
                _, label, kind, *rest = line.rstrip("\n").split("\t")
                if kind == "start":
                    started = label
                else:
                    results[label] = Outcome(kind, rest[0] if rest else "")
            returncode = child.wait()
            err.seek(0)
            lines = err.read().strip().splitlines()
        if returncode == 0 and not hung:
            break
        # The child died or hung: the last variant it started is the culprit; keep its file to reproduce.
        culprit = next((v for v in pending if v.label == started), pending[0])
        why = next((line for line in reversed(lines) if "GGML_ASSERT" in line or "error" in line.lower()),
                   lines[-1] if lines else "")
        keep = tmp / f"crashed-{len(results)}.gguf"
        culprit.write(keep)
        what = f"hung for {VARIANT_TIMEOUT_S} s" if hung else f"exit {returncode} ({_signal(returncode)})"
        results[culprit.label] = Outcome("crashed", f"{what}: {why} [{keep}]")
        pending = [v for v in pending if v.label not in results]
    return results


def _signal(returncode: int) -> str:
    import signal

    return signal.Signals(-returncode).name if returncode < 0 else "no signal"


def assert_no_crash(results: dict[str, Outcome], expected: int) -> dict[str, int]:
    """Fails with every crashing variant listed; returns how many variants had each outcome."""
    assert len(results) == expected, f"{expected - len(results)} variants gave no result"
    crashed = {k: o.message for k, o in results.items() if o.kind == "crashed"}
    assert not crashed, "variants that killed the process:\n" + "\n".join(f"  {k}: {m}" for k, m in crashed.items())
    counts: dict[str, int] = {}
    for o in results.values():
        counts[o.kind] = counts.get(o.kind, 0) + 1
    print(f"\n{expected} variants: {counts}")
    if os.environ.get("OHAI_TEST_VARIANTS"):   # list every outcome (pytest -s)
        for label, o in results.items():
            print(f"  {o.kind:8} {label}  {o.message[-160:]}")
    return counts


# --- the models the variants start from ----------------------------------------------------------------------

F32_T, F16_T = 0, 1
TINY_LAYERS = 2


def _tiny_f16(tiny: bytes) -> bytes:
    """The tiny model with its matrices in F16 (norms stay F32)."""
    import numpy as np

    g = Gguf.parse(tiny)
    for t in g.tensors:
        if len(t.shape) == 2:
            f32 = np.frombuffer(g.raw[g.data_start + t.offset:g.data_start + t.offset + t.nbytes()], dtype=np.float32)
            g.replace(t.name, F16_T, f32.astype(np.float16).tobytes())
    return g.to_bytes()


# The 256-wide model's matrices: one per type family whose blocks are 256 values, so that the same-size pairs
# Q3_K/IQ3_S and IQ2_XXS/TQ2_0 occur. Their data is random bytes: a check must not care about data.
WIDE_TYPES = {"attn_q": "Q3_K", "attn_k": "IQ3_S", "attn_v": "IQ2_XXS", "attn_output": "TQ2_0", "ffn_gate": "Q4_K",
              "ffn_up": "Q6_K", "ffn_down": "Q5_K", "token_embd": "Q8_0", "output": "Q2_K"}


def _wide(tiny: bytes) -> bytes:
    """The tiny model reshaped to n_embd = n_ff = 256 (head size 64), matrices in 256-block quantized types."""
    import gguf
    import numpy as np

    e, f, kv = 256, 256, 128   # 4 heads of 64, 2 KV heads
    g = Gguf.parse(tiny)
    for key, value in (("llama.embedding_length", e), ("llama.feed_forward_length", f), ("llama.rope.dimension_count", 64)):
        g.set(key, encode_value(U32, value))
    n_vocab = g.tensor("token_embd.weight").shape[1]
    shapes = {"token_embd": [e, n_vocab], "output": [e, n_vocab], "attn_q": [e, e], "attn_k": [e, kv], "attn_v": [e, kv],
              "attn_output": [e, e], "ffn_gate": [e, f], "ffn_up": [e, f], "ffn_down": [f, e]}
    for i, t in enumerate(g.tensors):
        role = t.name.split(".")[-2]
        if role in shapes:
            qtype = int(gguf.GGMLQuantizationType[WIDE_TYPES[role]])
            _, block, size = _ggml_types()[qtype]
            n = shapes[role][0] * shapes[role][1] // block * size
            g.replace(t.name, qtype, _random_bytes(n, i), shapes[role])
        else:  # a norm
            g.replace(t.name, F32_T, np.ones(e, dtype=np.float32).tobytes(), [e])
    return g.to_bytes()


def _as_arch(data: bytes, arch: str) -> bytes:
    """The same model declared as another architecture whose graph takes the same tensors (gemma: without
    output.weight, it always multiplies with the embedding matrix)."""
    g = Gguf.parse(data)
    g.kv = {(arch + k[5:] if k.startswith("llama.") else k): (-1, v) for k, (_, v) in g.kv.items()}
    g.set("general.architecture", encode_value(STR, arch))
    if arch == "gemma":
        g.drop("output.weight")
    return g.to_bytes()


# Graphs built with layer 0's head counts / reading them per layer / rotating part of a head.
OTHER_ARCHS = ("qwen2", "deci", "gemma")


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path, default_model_path: str) -> dict[str, str]:
    """The real default model, and the tiny llama in F32, F16, Q4_0 and (256 wide) 256-block quantized types."""
    import ohai

    d = tmp_path_factory.mktemp("bases")
    tiny = tiny_model_path.read_bytes()
    (d / "tiny-f16.gguf").write_bytes(_tiny_f16(tiny))
    (d / "wide.gguf").write_bytes(_wide(tiny))
    ohai.quantize(tiny_model_path, d / "tiny-q4_0.gguf", "Q4_0")
    out = {"default": default_model_path, "tiny_f32": str(tiny_model_path), "tiny_f16": str(d / "tiny-f16.gguf"),
           "tiny_q4_0": str(d / "tiny-q4_0.gguf"), "wide": str(d / "wide.gguf")}
    for arch in OTHER_ARCHS:
        (d / f"{arch}.gguf").write_bytes(_as_arch((d / "tiny-f16.gguf").read_bytes(), arch))
        out[arch] = str(d / f"{arch}.gguf")
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("variants")


def test_bases_generate(bases: dict[str, str], work: Path) -> None:
    """The starting points work, so a refused variant is refused for its change."""
    results = run_variants([Variant(name, path) for name, path in bases.items()], work)
    assert {k: o.kind for k, o in results.items()} == {k: "ok" for k in bases}, results


def _present(path: str) -> dict[str, bytes]:
    return {k: v for k, (_, v) in Gguf.parse(Path(path).read_bytes()).kv.items()}


# --- hyperparameter values -----------------------------------------------------------------------------------

FLOAT_VALUES = [-1.0, 0.0, -0.0, math.nan, math.inf, -math.inf, 1e38, -1e38, 1e-45, 3.4e38]
FLOAT_KEYS = [
    "llama.attention.layer_norm_rms_epsilon",
    "llama.attention.layer_norm_epsilon",
    "llama.rope.freq_base",
    "llama.rope.freq_base_swa",
    "llama.rope.scaling.factor",
    "llama.rope.scale_linear",
    "llama.rope.scaling.attn_factor",
    "llama.rope.scaling.yarn_log_multiplier",   # a float llama.cpp does not read for llama: still must not be NaN
]


def test_float_hyperparameters(bases: dict[str, str], work: Path) -> None:
    """Each float hyperparameter over hostile values: in place in the real model where it has the key, else
    added to the tiny one; also as float64 and as an integer (llama.cpp reads float32 only)."""
    present = _present(bases["default"])
    variants = []
    for key in FLOAT_KEYS:
        base = "default" if key in present else "tiny_f16"
        variants += [Variant(f"{base}:{key}={value!r}", bases[base], kv={key: [F32, value]}) for value in FLOAT_VALUES]
        variants.append(Variant(f"{key} as f64 nan", bases["tiny_f16"], kv={key: [F64, math.nan]}))
        variants.append(Variant(f"{key} as u32", bases["tiny_f16"], kv={key: [U32, 1]}))
    variants += [Variant(f"tiny_f16:{key}=2.0", bases["tiny_f16"], kv={key: [F32, 2.0]}) for key in FLOAT_KEYS]
    # Yarn scaling derives more factors from the scaling factor (llama-context.cpp).
    variants += [Variant(f"yarn:{v!r}", bases["tiny_f16"], kv={"llama.rope.scaling.type": [STR, "yarn"],
                                                               "llama.rope.scaling.factor": [F32, v]})
                 for v in (0.5, 4.0, 1e-30, 1e30)]
    results = run_variants(variants, work)
    assert_no_crash(results, len(variants))
    for key in FLOAT_KEYS:
        # NaN means nothing anywhere; infinity can be meaningful (a lower bound), except for the keys with rules.
        hostile = (math.nan,) if key.endswith("yarn_log_multiplier") else (math.nan, math.inf, -math.inf)
        for label in [f"{base}:{key}={v!r}" for base in ("default", "tiny_f16") for v in hostile]:
            if label in results:
                assert results[label].kind == "refused" and key in results[label].message, (label, results[label])
    for key in ("llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base"):
        o = results[f"default:{key}=-1.0"]
        assert o.kind == "refused" and key in o.message, o
    assert results["tiny_f16:llama.rope.scaling.factor=2.0"].kind == "ok"


def _int_sweep(v: int) -> list[int]:
    """Hostile values for a count whose sound value is v: zero, the 32-bit edges, and values whose product with
    a power-of-two factor wraps 32-bit arithmetic back to a plausible number."""
    values = [0, 1, v - 1, v + 1, v * 2, 2**31 - 1, 2**31, 2**32 - 1, v + 2**26, v + 2**28, v + 2**31]
    return sorted({x for x in values if 0 <= x < 2**32 and x != v})


INT_KEYS = [
    "llama.context_length",
    "llama.embedding_length",
    "llama.block_count",
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.key_length",
    "llama.attention.value_length",
    "llama.rope.dimension_count",
    "llama.vocab_size",
    "llama.rope.scaling.original_context_length",
    "llama.expert_count",
    "llama.expert_used_count",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
]
# What the keys the tiny model lacks would be if it had them.
TINY_IMPLIED = {"llama.attention.key_length": 16, "llama.attention.value_length": 16, "llama.vocab_size": 32000,
                "llama.rope.scaling.original_context_length": 256, "llama.expert_count": 0,
                "llama.expert_used_count": 0}


def _u32(encoded: bytes) -> int | None:
    vtype = struct.unpack_from("<I", encoded)[0]
    return struct.unpack_from("<I", encoded, 4)[0] if vtype == U32 else None


def test_integer_hyperparameters(bases: dict[str, str], work: Path) -> None:
    """Each count over zero, the 32-bit edges and wrapping values, in the real model (in place) and in the tiny one
    (whose 2 KV heads let a head count wrap exactly); also as int32 -1 and as uint64."""
    variants = []
    for base in ("default", "tiny_f16"):
        present = _present(bases[base])
        for key in INT_KEYS:
            v = _u32(present[key]) if key in present else TINY_IMPLIED.get(key)
            if v is None or (base == "default" and (key not in present or key.startswith("tokenizer."))):
                continue
            variants += [Variant(f"{base}:{key}={x}", bases[base], kv={key: [U32, x]}) for x in _int_sweep(v)]
    for key in INT_KEYS:
        variants.append(Variant(f"{key} as i32 -1", bases["tiny_f16"], kv={key: [I32, -1]}))
        variants.append(Variant(f"{key} as u64", bases["tiny_f16"], kv={key: [U64, 2**32 + 16]}))
    results = run_variants(variants, work)
    assert_no_crash(results, len(variants))
    # The wrapping examples: 64 * (3 + 2**26) == 192 and 16 * (2 + 2**31) == 32 (mod 2**32), the right K/V widths.
    for label in (f"default:llama.attention.head_count_kv={3 + 2**26}", f"tiny_f16:llama.attention.head_count_kv={2 + 2**31}",
                  f"tiny_f16:llama.attention.key_length={16 + 2**28}"):
        o = results[label]
        assert o.kind == "refused" and label.split(":")[1].split("=")[0] in o.message, (label, o)
    for label in ("default:llama.context_length=0", "default:llama.vocab_size=49153", "tiny_f16:llama.attention.value_length=32",
                  "tiny_f16:llama.rope.dimension_count=15", "tiny_f16:llama.feed_forward_length=0"):
        assert results[label].kind == "refused", (label, results[label])


def test_per_layer_arrays(bases: dict[str, str], work: Path) -> None:
    """Per-layer hyperparameters given as arrays: every element is checked, not only the largest."""
    base = bases["tiny_f16"]
    variants = []
    for key, v in (("llama.attention.head_count", 4), ("llama.attention.head_count_kv", 2), ("llama.feed_forward_length", 128),
                   ("llama.expert_used_count", 0)):
        for elem in (U32, I32):
            variants.append(Variant(f"{key}[uniform {elem}]", base, kv={key: [ARR, [v] * TINY_LAYERS, elem]}))
        for bad in _int_sweep(v):
            for layer in range(TINY_LAYERS):
                arr = [v] * TINY_LAYERS
                arr[layer] = bad
                variants.append(Variant(f"{key}[{layer}]={bad}", base, kv={key: [ARR, arr, U32]}))
        variants.append(Variant(f"{key}[i32 -1]", base, kv={key: [ARR, [v] * (TINY_LAYERS - 1) + [-1], I32]}))
        variants.append(Variant(f"{key}[u64]", base, kv={key: [ARR, [v] * TINY_LAYERS, U64]}))
        for length in (0, 1, TINY_LAYERS + 1, 600):
            variants.append(Variant(f"{key}[len {length}]", base, kv={key: [ARR, [v] * length, U32]}))
    results = run_variants(variants, work)
    assert_no_crash(results, len(variants))
    assert results[f"llama.attention.head_count_kv[uniform {U32}]"].kind == "ok"
    o = results["llama.attention.head_count_kv[1]=0"]
    assert o.kind == "refused" and "head_count_kv[1]" in o.message, o


def test_other_architectures(bases: dict[str, str], work: Path) -> None:
    """The rules that hold for every architecture, on two whose graphs differ from llama's where it matters: rope
    may cover part of a head, and per-layer head counts are used layer by layer."""
    variants = []
    for arch in OTHER_ARCHS:
        base = bases[arch]
        for name, v in (("attention.head_count", 4), ("attention.head_count_kv", 2), ("attention.key_length", 16),
                        ("attention.value_length", 16), ("rope.dimension_count", 16), ("feed_forward_length", 128),
                        ("embedding_length", 64)):
            key = f"{arch}.{name}"
            variants += [Variant(f"{key}={x}", base, kv={key: [U32, x]}) for x in sorted(set(_int_sweep(v)) | {3, 6, 8, 12} - {v})]
            if name in ("attention.head_count", "attention.head_count_kv", "feed_forward_length"):
                for bad in _int_sweep(v):
                    variants.append(Variant(f"{key}[1]={bad}", base, kv={key: [ARR, [v, bad], U32]}))
        variants.append(Variant(f"{arch}:eps=nan", base, kv={f"{arch}.attention.layer_norm_rms_epsilon": [F32, math.nan]}))
    results = run_variants(variants, work)
    assert_no_crash(results, len(variants))
    assert results["gemma.rope.dimension_count=8"].kind == "ok"   # rope over part of a head is fine there
    # 0 rotated dimensions made ggml's rope kernel loop forever; per-layer KV heads in a layer-0 graph aborted.
    for label in ("qwen2.rope.dimension_count=3", "gemma.rope.dimension_count=0", "gemma.attention.head_count_kv[1]=1",
                  "qwen2.attention.key_length=32", "deci.attention.head_count_kv[1]=3"):
        assert results[label].kind == "refused", (label, results[label])


# --- tensor types --------------------------------------------------------------------------------------------

def _same_size_types(ttype: int) -> list[int]:
    types = _ggml_types()
    return [t for t, (_, block, size) in types.items() if t != ttype and (block, size) == types[ttype][1:]]


def test_tensor_retyped_to_a_same_size_type(bases: dict[str, str], work: Path) -> None:
    """Every tensor of the tiny models, declared as every other type of the same size: the file stays in bounds,
    only the kernels differ."""
    variants = []
    for name in ("tiny_f32", "tiny_f16", "tiny_q4_0", "wide"):
        for t in Gguf.parse(Path(bases[name]).read_bytes()).tensors:
            variants += [Variant(f"{name}:{t.name}->{_ggml_types()[o][0]}", bases[name], retype={t.name: o})
                         for o in _same_size_types(t.ttype)]
    results = run_variants(variants, work)
    assert_no_crash(results, len(variants))
    o = results["tiny_f32:blk.0.attn_norm.weight->I32"]
    assert o.kind == "refused" and "blk.0.attn_norm.weight" in o.message, o
    assert results["tiny_f16:blk.0.attn_q.weight->BF16"].kind == "ok"


# One tensor per role and path through the graph (the output matrix is covered by the tied variants below).
ROLE_TENSORS = ["token_embd.weight", "output_norm.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
                "blk.0.attn_v.weight", "blk.1.ffn_down.weight"]


def test_every_type_in_every_role(bases: dict[str, str], work: Path) -> None:
    """One tensor of each role in the 256-wide model, declared as every ggml type (with data of the right size)."""
    variants = [Variant(f"{name}->{tname}", bases["wide"], retype={name: t})
                for name in ROLE_TENSORS for t, (tname, _, _) in _ggml_types().items()]
    # Tied embeddings: without output.weight the embedding matrix is multiplied too.
    variants += [Variant(f"tied:token_embd.weight->{tname}", bases["wide"], retype={"token_embd.weight": t},
                         drop=["output.weight"])
                 for t, (tname, _, _) in _ggml_types().items()]
    results = run_variants(variants, work)
    assert_no_crash(results, len(variants))


def test_llama_cpp_vocab_files_pass() -> None:
    """The vocabulary files of the pinned llama.cpp (many architectures' hyperparameters, no tensors) are not refused:
    the checks hold real files to what llama.cpp needs, not to what the llama architecture looks like."""
    import ohai
    from tiny_model import REPO_ROOT

    files = sorted((REPO_ROOT / "third_party" / "llama.cpp" / "models").glob("ggml-vocab-*.gguf"))
    assert len(files) > 10
    # The small ones: loading a large vocabulary takes llama.cpp seconds, and adds no architectures.
    for path in [f for f in files if f.stat().st_size < 2_500_000]:
        ohai.Model(path, vocab_only=True).close()
