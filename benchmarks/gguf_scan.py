"""Scanning a library of 1,000 GGUF files shaped like real ones, cold and warm.

Run from the repository root: python benchmarks/gguf_scan.py [--files N] [--runs N] [--keep] [--reuse DIR]
Prints `key: value` lines. The promises, on the 2-core machines: a cold scan (no cache of ours,
the files already in the page cache) takes cold_s <= 3, a warm one (our cache says nothing
changed) warm_s <= 0.2.

Each file is what a real small model's header looks like: ~25 keys (general.*, <arch>.*, the
tokenizer), among them a 262,144-entry `tokenizer.ggml.tokens` string array (SentencePiece-like
pieces, 9.6 bytes on average where Gemma 3's are 8.8, and with a "." in one token in a hundred,
three times Gemma's share: dots are what the reader's search trips over), `tokenizer.ggml.scores`
(f32) and
`tokenizer.ggml.token_type` (i32) arrays of the same length, a 65,536-entry
`tokenizer.ggml.merges` string array, and a chat template after them; then 111 tensor entries
(a 12-block model). That is ~7.4 MB of header per file, ~7.4 GB for the library. The tensor data is
a hole: each file is sparse, with the apparent size of its weights. Architectures, file types and
context lengths vary from file to file.

  cold_s       a fresh GgufLibrary, no cache file, scanning the folder. Every header is read
               just before each cold scan, so the page cache holds them and this measures our
               parsing, not the disk (these VMs page out file pages left idle for about a minute;
               cold_disk_mb says how much a cold scan still read from the disk)
  warm_s       a fresh GgufLibrary with the cache file the cold scan wrote (loads the JSON,
               stats every file, opens none)
  warm_same_s  the same library scanning a second time (its cache already in memory)
  naive_ratio  the per-file time of a naive reader (one read, then every value unpacked and every
               string decoded, as the unit tests' reference parser does) on a 20-file sample,
               divided by the cold scan's per-file time

Medians of --runs runs (3). The files are written to a temporary folder and removed at the end
(--keep leaves them, and --reuse DIR measures a folder kept earlier without writing it again).
cold_cpu_s is the CPU time the cold scan used: on a shared machine, wall time minus CPU time is
time spent waiting for a core (load_average says how busy the machine was).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import statistics
import struct
import sys
import tempfile
import time
from math import prod
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from desktop_app.services.local.gguf import GgufLibrary  # noqa: E402

VOCAB = 262_144
MERGES = 65_536
BLOCKS = 12
TARGET_COLD_S = 3.0
TARGET_WARM_S = 0.2
SAMPLE = 20

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FORMATS = {
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
ARCHITECTURES = ("llama", "gemma3", "qwen2", "mistral3", "phi3")
FILE_TYPES = (15, 17, 18, 7, 2, 1)  # Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, F16
CHAT_TEMPLATE = (
    "{{ bos_token }}{%- for message in messages -%}{%- if message['role'] == 'user' -%}"
    "<start_of_turn>user\n{{ message['content'] | trim }}<end_of_turn>\n{%- else -%}"
    "<start_of_turn>model\n{{ message['content'] | trim }}<end_of_turn>\n{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<start_of_turn>model\n{%- endif -%}"
) * 4


# --- writing the files ----------------------------------------------------------------------------


def string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str, value_type: int, value: Any) -> bytes:
    encoded = string(value) if value_type == STR else struct.pack(_FORMATS[value_type], value)
    return string(key) + struct.pack("<I", value_type) + encoded


def string_array(key: str, items: list[bytes]) -> bytes:
    return string(key) + struct.pack("<IIQ", ARR, STR, len(items)) + b"".join(map(string, items))


def number_array(key: str, item_type: int, data: bytes, count: int) -> bytes:
    return string(key) + struct.pack("<IIQ", ARR, item_type, count) + data


def vocabulary(rng: random.Random) -> list[bytes]:
    """Pieces like a SentencePiece vocabulary: specials, byte tokens, then words and word parts."""
    letters = "etaoinshrdlcumwfgypbvkjxqz" * 3 + "éàüöñçøß" + "日本語中文한국어"
    pieces = [b"<pad>", b"<eos>", b"<bos>", b"<unk>", b"<mask>"] + [f"<unused{i}>".encode() for i in range(99)]
    pieces += [f"<0x{i:02X}>".encode() for i in range(256)]
    lengths = (1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10, 12, 16)
    while len(pieces) < VOCAB:
        word = "".join(rng.choice(letters) for _ in range(rng.choice(lengths)))
        if rng.random() < 0.01:
            word = rng.choice((".", "", "www.")) + word + rng.choice((".", ".com", "()."))
        pieces.append(("▁" + word if rng.random() < 0.55 else word).encode())
    return pieces


def tokenizer_block() -> tuple[bytes, float]:
    """The four tokenizer arrays, and the average token length in bytes."""
    rng = random.Random(2026)
    pieces = vocabulary(rng)
    scores = struct.pack(f"<{VOCAB}f", *(-float(i) for i in range(VOCAB)))
    types = struct.pack(f"<{VOCAB}i", *(3 if i < 360 else 1 for i in range(VOCAB)))
    merges = [pieces[rng.randrange(360, 20_000)] + b" " + pieces[rng.randrange(360, 20_000)] for _ in range(MERGES)]
    return b"".join(
        (
            string_array("tokenizer.ggml.tokens", pieces),
            number_array("tokenizer.ggml.scores", F32, scores, VOCAB),
            number_array("tokenizer.ggml.token_type", I32, types, VOCAB),
            string_array("tokenizer.ggml.merges", merges),
        )
    ), sum(map(len, pieces)) / len(pieces)


def tensors(embedding: int, feed_forward: int) -> list[tuple[str, tuple[int, ...], int]]:
    found = [("token_embd.weight", (embedding, VOCAB), 14)]
    for block in range(BLOCKS):
        found += [
            (f"blk.{block}.attn_norm.weight", (embedding,), 0),
            (f"blk.{block}.attn_q.weight", (embedding, embedding), 12),
            (f"blk.{block}.attn_k.weight", (embedding, embedding // 4), 12),
            (f"blk.{block}.attn_v.weight", (embedding, embedding // 4), 14),
            (f"blk.{block}.attn_output.weight", (embedding, embedding), 12),
            (f"blk.{block}.ffn_norm.weight", (embedding,), 0),
            (f"blk.{block}.ffn_gate.weight", (embedding, feed_forward), 12),
            (f"blk.{block}.ffn_up.weight", (embedding, feed_forward), 12),
            (f"blk.{block}.ffn_down.weight", (feed_forward, embedding), 14),
        ]
    return [*found, ("output_norm.weight", (embedding,), 0), ("rope_freqs.weight", (embedding // 32,), 0)]


def model_file(path: Path, number: int, tokenizer: bytes) -> None:
    arch = ARCHITECTURES[number % len(ARCHITECTURES)]
    embedding, feed_forward = (1024, 4096) if number % 2 else (1536, 6144)
    head = [
        kv("general.architecture", STR, arch),
        kv("general.type", STR, "model"),
        kv("general.name", STR, f"Bench Model {number:04d}"),
        kv("general.basename", STR, "bench"),
        kv("general.size_label", STR, "1B"),
        kv("general.license", STR, "apache-2.0"),
        string("general.tags") + struct.pack("<IIQ", ARR, STR, 2) + string("text-generation") + string("bench"),
        kv(f"{arch}.context_length", U32, (8192, 32768, 131072)[number % 3]),
        kv(f"{arch}.embedding_length", U32, embedding),
        kv(f"{arch}.block_count", U32, BLOCKS),
        kv(f"{arch}.feed_forward_length", U32, feed_forward),
        kv(f"{arch}.attention.head_count", U32, 16),
        kv(f"{arch}.attention.head_count_kv", U32, 4),
        kv(f"{arch}.rope.freq_base", F32, 1e6),
        kv(f"{arch}.attention.layer_norm_rms_epsilon", F32, 1e-6),
        kv("tokenizer.ggml.model", STR, "llama"),
        kv("tokenizer.ggml.pre", STR, "default"),
    ]
    tail = [
        kv("tokenizer.ggml.bos_token_id", U32, 2),
        kv("tokenizer.ggml.eos_token_id", U32, 1),
        kv("tokenizer.ggml.padding_token_id", U32, 0),
        kv("tokenizer.ggml.add_bos_token", BOOL, True),
        kv("tokenizer.ggml.add_eos_token", BOOL, False),
        kv("tokenizer.chat_template", STR, CHAT_TEMPLATE),
        kv("general.quantization_version", U32, 2),
        kv("general.file_type", U32, FILE_TYPES[number % len(FILE_TYPES)]),
    ]
    entries = tensors(embedding, feed_forward)
    infos, offset = [], 0
    for name, shape, ggml_type in entries:
        infos.append(string(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, ggml_type, offset))
        offset += -(-prod(shape) * 9 // 16 // 32) * 32  # ~4.5 bits a weight, 32-byte aligned
    count = len(head) + 4 + len(tail)
    header = b"".join([b"GGUF", struct.pack("<IQQ", 3, len(entries), count), *head, tokenizer, *tail, *infos])
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(len(header) + (-len(header) % 32) + offset)  # the weights: a hole


def write_library(folder: Path, files: int) -> tuple[int, float]:
    """Write the files; return the tokenizer's size in bytes and its average token length."""
    tokenizer, token_bytes = tokenizer_block()
    for number in range(files):
        publisher = folder / f"publisher-{number % 10}" / f"repo-{number // 10:03d}"
        publisher.mkdir(parents=True, exist_ok=True)
        model_file(publisher / f"bench-{number:04d}-Q4_K_M.gguf", number, tokenizer)
    return len(tokenizer), token_bytes


def warm_page_cache(paths: list[Path], header_bytes: int) -> None:
    """Read every header once, so that a scan finds it in the page cache."""
    for path in paths:
        with open(path, "rb", buffering=0) as file:
            file.read(header_bytes)


def disk_read_mb() -> float:
    """What this process has read from the disk itself so far (page-cache hits not included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_inblock * 512 / 2**20


# --- a naive reader, for comparison ---------------------------------------------------------------


def naive_read(path: Path) -> dict[str, Any]:
    """Read the header at once, then unpack every value and decode every string in order."""
    with open(path, "rb") as file:
        data = file.read(32 * 2**20)
    pos = 24

    def take(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal pos
        length = take("<Q")
        pos += length
        return data[pos - length : pos].decode("utf-8", errors="replace")

    def value(value_type: int) -> Any:
        if value_type == STR:
            return text()
        if value_type == ARR:
            item_type, count = take("<I"), take("<Q")
            return [value(item_type) for _ in range(count)]
        return take(_FORMATS[value_type])

    _, tensor_count, kv_count = struct.unpack_from("<IQQ", data, 4)
    keys = {}
    for _ in range(kv_count):
        key = text()
        keys[key] = value(take("<I"))
    parameters = 0
    for _ in range(tensor_count):
        text()
        shape = [take("<Q") for _ in range(take("<I"))]
        take("<I")
        take("<Q")
        parameters += prod(shape)
    return {
        "architecture": keys["general.architecture"],
        "name": keys["general.name"],
        "parameter_count": parameters,
        "has_chat_template": bool(keys.get("tokenizer.chat_template")),
    }


# --- measuring ------------------------------------------------------------------------------------


def timed_scan(library: GgufLibrary) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (this process), and the result of one scan."""
    cpu, started = time.process_time(), time.perf_counter()
    result = asyncio.run(library.scan())
    return time.perf_counter() - started, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the files in place")
    parser.add_argument("--reuse", type=Path, help="a folder left by --keep: measure it as it is")
    args = parser.parse_args()

    folder = args.reuse or Path(tempfile.mkdtemp(prefix="modeldesk-gguf-bench-"))
    try:
        started = time.perf_counter()
        if args.reuse is None:
            tokenizer_bytes, token_bytes = write_library(folder / "models", args.files)
            print(f"tokenizer_mb_per_file: {tokenizer_bytes / 2**20:.2f}")
            print(f"average_token_bytes: {token_bytes:.2f}")
            print(f"write_s: {time.perf_counter() - started:.1f}")
        paths = sorted((folder / "models").rglob("*.gguf"))
        header_bytes = 10 * 2**20  # the tokenizer is ~8.2 MB; past the header lies the sparse data
        print(f"files: {len(paths)}")
        print(f"load_average: {' '.join(f'{value:.1f}' for value in os.getloadavg())} ({os.cpu_count()} cores)")

        cache = folder / "cache" / "gguf.json"
        colds, cold_cpus, cold_disk, warms, warm_sames = [], [], [], [], []
        result = None
        for _ in range(args.runs):
            cache.unlink(missing_ok=True)
            warm_page_cache(paths, header_bytes)
            library = GgufLibrary(cache, folders=[folder / "models"])
            disk_before = disk_read_mb()
            cold, cold_cpu, result = timed_scan(library)
            cold_disk.append(disk_read_mb() - disk_before)
            warm_same, _, _ = timed_scan(library)
            warm, _, warm_result = timed_scan(GgufLibrary(cache, folders=[folder / "models"]))
            assert warm_result == result, "the cached scan must agree with the cold one"
            colds.append(cold)
            cold_cpus.append(cold_cpu)
            warms.append(warm)
            warm_sames.append(warm_same)
        assert result is not None
        cold_s, warm_s = statistics.median(colds), statistics.median(warms)
        print(f"infos: {len(result.infos)}")
        print(f"problems: {len(result.problems)}")
        print(f"cold_s: {cold_s:.3f}")
        print(f"cold_runs_s: {' '.join(f'{value:.3f}' for value in colds)}")
        print(f"cold_cpu_s: {statistics.median(cold_cpus):.3f}")
        print(f"cold_disk_mb: {' '.join(f'{value:.0f}' for value in cold_disk)}")
        print(f"per_file_ms: {cold_s / len(paths) * 1000:.3f}")
        print(f"warm_s: {warm_s:.4f}")
        print(f"warm_runs_s: {' '.join(f'{value:.4f}' for value in warms)}")
        print(f"warm_same_s: {statistics.median(warm_sames):.4f}")
        print(f"cache_kb: {cache.stat().st_size / 1024:.0f}")

        sample = paths[:: max(1, len(paths) // SAMPLE)][:SAMPLE]
        by_path = {info.path: info for info in result.infos}
        started = time.perf_counter()
        naive = [naive_read(path) for path in sample]
        naive_ms = (time.perf_counter() - started) / len(sample) * 1000
        agree = all(
            (
                by_path[path].architecture,
                by_path[path].name,
                by_path[path].parameter_count,
                by_path[path].has_chat_template,
            )
            == tuple(expected.values())
            for path, expected in zip(sample, naive, strict=True)
        )
        print(f"naive_per_file_ms: {naive_ms:.1f}")
        print(f"naive_ratio: {naive_ms / (cold_s / len(paths) * 1000):.1f}")
        print(f"agrees_with_naive: {'yes' if agree else 'NO'}")
        print(f"cold_target_met: {'yes' if cold_s <= TARGET_COLD_S else 'NO'} (<= {TARGET_COLD_S})")
        print(f"warm_target_met: {'yes' if warm_s <= TARGET_WARM_S else 'NO'} (<= {TARGET_WARM_S})")
    finally:
        if args.keep or args.reuse:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
