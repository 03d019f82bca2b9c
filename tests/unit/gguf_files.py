"""GGUF files for tests, written byte by byte the way the format describes them: any metadata and
tensor list, with the tensor data left as a sparse hole of the right size."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR_FORMATS = {
    U8: "<B",
    I8: "<b",
    U16: "<H",
    I16: "<h",
    U32: "<I",
    I32: "<i",
    F32: "<f",
    BOOL: "<?",
    U64: "<Q",
    I64: "<q",
    F64: "<d",
}
# tensor types
Q4_K, Q6_K, F32_TENSOR = 12, 14, 0


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def gguf_value(value_type: int, value: Any) -> bytes:
    if value_type == STR:
        return gguf_string(value)
    if value_type == ARR:
        item_type, items = value
        if item_type == STR:
            return struct.pack("<IQ", item_type, len(items)) + b"".join(map(gguf_string, items))
        return struct.pack("<IQ", item_type, len(items)) + b"".join(gguf_value(item_type, item) for item in items)
    return struct.pack(SCALAR_FORMATS[value_type], value)


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int = Q4_K


KV = tuple[str | bytes, int, Any]


def gguf_bytes(
    kvs: Sequence[KV], tensors: Sequence[Tensor] = (), *, version: int = 3, alignment: int = 32
) -> tuple[bytes, int]:
    """The header bytes and the size the whole file should have (its tensor data left sparse)."""
    parts = [b"GGUF", struct.pack("<IQQ", version, len(tensors), len(kvs))]
    for key, value_type, value in kvs:
        parts += [gguf_string(key), struct.pack("<I", value_type), gguf_value(value_type, value)]
    offset = 0
    for tensor in tensors:
        parts += [
            gguf_string(tensor.name),
            struct.pack("<I", len(tensor.shape)),
            struct.pack(f"<{len(tensor.shape)}Q", *tensor.shape),
            struct.pack("<IQ", tensor.ggml_type, offset),
        ]
        offset += -(-prod(tensor.shape) // 2 // alignment) * alignment  # ~half a byte a weight
    header = b"".join(parts)
    data_start = len(header) + (-len(header) % alignment)
    return header, data_start + offset


def write_gguf(path: Path, kvs: Sequence[KV], tensors: Sequence[Tensor] = (), **options: Any) -> Path:
    header, size = gguf_bytes(kvs, tensors, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header)
    os.truncate(path, max(size, len(header)))
    return path


def tokens(count: int, seed: int = 1) -> list[bytes]:
    """Token strings shaped like a SentencePiece vocabulary: specials, bytes, then word pieces."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzéàü"
    specials = [b"<pad>", b"<eos>", b"<bos>", b"<unk>"] + [f"<unused{i}>".encode() for i in range(60)]
    byte_tokens = [f"<0x{i:02X}>".encode() for i in range(256)]
    words = []
    for index in range(count - len(specials) - len(byte_tokens)):
        word = "".join(rng.choice(letters) for _ in range(rng.choice((1, 2, 3, 3, 4, 5, 6, 7, 8, 10, 14))))
        if index % 97 == 0:
            word += "." + rng.choice(("com", "org", "py"))
        words.append(("▁" + word if rng.random() < 0.6 else word).encode())
    return (specials + byte_tokens + words)[:count]


def model_kvs(
    *,
    arch: str = "llama",
    name: str | None = "Test Model",
    vocab: int = 4000,
    merges: int = 0,
    chat_template: str | None = "{% for m in messages %}{{ m.content }}{% endfor %}",
    file_type: int | None = 15,
    context: int = 8192,
    extra: Sequence[KV] = (),
) -> list[KV]:
    vocabulary = tokens(vocab)
    kvs: list[KV] = [("general.architecture", STR, arch)]
    if name is not None:
        kvs.append(("general.name", STR, name))
    kvs += [
        ("general.tags", ARR, (STR, ["text-generation", "test"])),
        (f"{arch}.context_length", U32, context),
        (f"{arch}.embedding_length", U32, 64),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32, 1e-6),
        ("tokenizer.ggml.model", STR, "gpt2" if merges else "llama"),
        ("tokenizer.ggml.tokens", ARR, (STR, vocabulary)),
        ("tokenizer.ggml.scores", ARR, (F32, [float(-i) for i in range(vocab)])),
        ("tokenizer.ggml.token_type", ARR, (I32, [1] * vocab)),
    ]
    if merges:
        pairs = [b"%s %s" % (vocabulary[400 + i % 3000], vocabulary[401 + i % 2999]) for i in range(merges)]
        kvs.append(("tokenizer.ggml.merges", ARR, (STR, pairs)))
    kvs += [("tokenizer.ggml.bos_token_id", U32, 2), ("tokenizer.ggml.add_bos_token", BOOL, True)]
    if chat_template is not None:
        kvs.append(("tokenizer.chat_template", STR, chat_template))
    kvs += list(extra)
    kvs.append(("general.quantization_version", U32, 2))
    if file_type is not None:
        kvs.append(("general.file_type", U32, file_type))
    return kvs


def model_tensors(blocks: int = 2, embedding: int = 64, vocab: int = 4000) -> list[Tensor]:
    tensors = [Tensor("token_embd.weight", (embedding, vocab), Q6_K)]
    for block in range(blocks):
        tensors += [
            Tensor(f"blk.{block}.attn_norm.weight", (embedding,), F32_TENSOR),
            Tensor(f"blk.{block}.attn_q.weight", (embedding, embedding)),
            Tensor(f"blk.{block}.ffn_up.weight", (embedding, 4 * embedding)),
        ]
    return [*tensors, Tensor("output_norm.weight", (embedding,), F32_TENSOR)]
