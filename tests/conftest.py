"""Shared fixtures: the default model, a loaded engine, bad model files, and CLI runners."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ohai

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def default_model_path() -> str:
    return ohai.default_model_path()


@pytest.fixture(scope="session")
def model(default_model_path: str) -> Iterator[ohai.Model]:
    with ohai.Model(default_model_path, n_ctx=2048, threads=2) as m:
        yield m


def _bin(name: str) -> str:
    # Console scripts live next to the interpreter in a venv.
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed next to {sys.executable}; run `make install`")
    return found


@pytest.fixture(scope="session")
def ohai_cli_bin() -> str:
    return _bin("ohai-cli")


@pytest.fixture(scope="session")
def llama_simple_bin() -> str:
    """llama.cpp's own greedy decoder (examples/simple), built from the pinned tree with the C++ tests."""
    found = sorted(ROOT.glob("build/*/tests/cpp/llama-simple"))
    if not found:
        pytest.fail("llama-simple is not built; run `make install` (it builds with OHAI_BUILD_TESTS=ON)")
    return str(found[0])


def run_ohai(*args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs the `ohai` CLI as a user would, in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "ohai", *args], input=input if input is not None else "",
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def bad_models(tmp_path_factory: pytest.TempPathFactory, default_model_path: str) -> dict[str, Path]:
    """Files that must be refused with a clear error: one per way a model file can be broken."""
    import gguf

    d = tmp_path_factory.mktemp("bad_models")
    data = Path(default_model_path).read_bytes()
    files: dict[str, Path] = {}

    def write(name: str, content: bytes) -> None:
        files[name] = d / f"{name}.gguf"
        files[name].write_bytes(content)

    files["missing"] = d / "does-not-exist.gguf"
    files["directory"] = d
    write("empty", b"")
    write("random", os.urandom(4096))
    write("truncated", data[: len(data) // 2])
    write("header_only", data[:20])
    version = bytearray(data)
    version[4:8] = (99).to_bytes(4, "little")
    write("bad_version", bytes(version))
    kv_count = bytearray(data)
    kv_count[16:24] = (2**62).to_bytes(8, "little")
    write("bad_kv_count", bytes(kv_count))

    # Corrupt the tensor table of a real file: locate the first tensor's entry with gguf's reader.
    reader = gguf.GGUFReader(default_model_path)
    first = reader.tensors[0]
    entry = first.field.offset
    name_len = len(first.name.encode())
    n_dims_at = entry + 8 + name_len
    dims = bytearray(data)
    dims[n_dims_at:n_dims_at + 4] = (77).to_bytes(4, "little")
    write("bad_tensor_dims", bytes(dims))
    n_dims = int.from_bytes(data[n_dims_at:n_dims_at + 4], "little")
    type_at = n_dims_at + 4 + 8 * n_dims
    ttype = bytearray(data)
    ttype[type_at:type_at + 4] = (250).to_bytes(4, "little")
    write("bad_tensor_type", bytes(ttype))
    offset = bytearray(data)
    offset[type_at + 4:type_at + 12] = (2**40).to_bytes(8, "little")
    write("bad_tensor_offset", bytes(offset))

    # Well-formed files whose values llama.cpp would assert on (abort) rather than reject.
    values = _value_offsets(data)
    for name, count in (("zero_layers", 0), ("too_many_layers", 100_000)):
        patched = bytearray(data)
        struct.pack_into("<I", patched, values["llama.block_count"], count)
        write(name, bytes(patched))
    heads = bytearray(data)
    struct.pack_into("<I", heads, values["llama.attention.head_count"], 7)
    write("bad_head_count", bytes(heads))
    write("duplicate_token", _duplicate_a_token(data, values))
    return files


def _value_offsets(data: bytes) -> dict[str, int]:
    """Byte offset of each metadata value in a GGUF (for string arrays: of each element, keyed 'key[i]')."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    n_kv = struct.unpack_from("<Q", data, 16)[0]
    pos, out = 24, {}

    def skip_string(at: int) -> int:
        return at + 8 + struct.unpack_from("<Q", data, at)[0]

    for _ in range(n_kv):
        key_end = skip_string(pos)
        key = data[pos + 8:key_end].decode()
        vtype = struct.unpack_from("<I", data, key_end)[0]
        pos = key_end + 4
        out[key] = pos
        if vtype == 8:
            pos = skip_string(pos)
        elif vtype == 9:
            etype, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for i in range(count):
                if etype == 8:
                    out[f"{key}[{i}]"] = pos
                    pos = skip_string(pos)
                else:
                    pos += sizes[etype]
        else:
            pos += sizes[vtype]
    return out


def _duplicate_a_token(data: bytes, values: dict[str, int]) -> bytes:
    """Overwrites one vocabulary entry with another of the same length."""
    seen: dict[int, bytes] = {}
    for i in range(1000, 5000):
        at = values[f"tokenizer.ggml.tokens[{i}]"]
        length = struct.unpack_from("<Q", data, at)[0]
        if length in seen:
            patched = bytearray(data)
            patched[at + 8:at + 8 + length] = seen[length]
            return bytes(patched)
        seen[length] = data[at + 8:at + 8 + length]
    raise AssertionError("no two vocabulary entries of equal length")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF with a real tokenizer vocabulary, built once per session."""
    from tiny_model import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf")


# Test helpers (tiny_model, reference_llama) live next to this file; make them
# importable under any pytest import mode, not only the default "prepend".
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

