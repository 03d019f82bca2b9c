"""GGUF headers read right, checked against a plain reference parser, and broken files named in
one sentence.

The reference parser below reads every value one by one, the way the format describes it, with
nothing clever; the fast reader must agree with it on the real Gemma file and on synthetic files,
including ones built to mislead its search for the end of a string array.
"""

from __future__ import annotations

import os
import random
import stat
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import pytest

from desktop_app.domain.gguf import FILE_TYPE_NAMES, GgufInfo, quantisation_name
from desktop_app.services.local import gguf_header
from desktop_app.services.local.gguf_header import (
    BIG_ENDIAN,
    DATA_MISSING,
    EMPTY,
    NOT_A_FILE,
    NOT_REGULAR,
    TOO_LARGE,
    TRUNCATED,
    WRONG_MAGIC,
    GgufError,
    read_gguf_header,
)
from tests.unit.gguf_files import (
    ARR,
    BOOL,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    KV,
    SCALAR_FORMATS,
    STR,
    U8,
    U16,
    U32,
    U64,
    Tensor,
    gguf_bytes,
    gguf_string,
    gguf_value,
    model_kvs,
    model_tensors,
    tokens,
    write_gguf,
)

REPO = Path(__file__).resolve().parents[2]


# --- the reference parser -------------------------------------------------------------------------


@dataclass
class Reference:
    kv: dict[str, Any]
    tensors: list[tuple[str, tuple[int, ...], int, int]]


def reference_parse(path: Path) -> Reference:
    """Every key and value, every tensor entry: one value at a time, straight from the format."""
    with open(path, "rb") as file:
        data = file.read(64 * 1024 * 1024)
    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string() -> bytes:
        nonlocal pos
        length = take("<Q")
        raw = data[pos : pos + length]
        pos += length
        return raw

    def value(value_type: int) -> Any:
        if value_type == STR:
            return string().decode("utf-8", errors="replace")
        if value_type == ARR:
            item_type, count = take("<I"), take("<Q")
            return [value(item_type) for _ in range(count)]
        return take(SCALAR_FORMATS[value_type])

    assert data[:4] == b"GGUF"
    pos = 4
    take("<I")
    tensor_count, kv_count = take("<Q"), take("<Q")
    kv: dict[str, Any] = {}
    for _ in range(kv_count):
        key = string().decode()
        kv[key] = value(take("<I"))
    found = []
    for _ in range(tensor_count):
        name = string().decode()
        dims = take("<I")
        shape = tuple(take("<Q") for _ in range(dims))
        found.append((name, shape, take("<I"), take("<Q")))
    return Reference(kv, found)


def expected_fields(path: Path) -> dict[str, Any]:
    ref = reference_parse(path)
    arch = ref.kv.get("general.architecture", "unknown")
    by_type: dict[int, int] = {}
    for _, shape, ggml_type, _ in ref.tensors:
        by_type[ggml_type] = by_type.get(ggml_type, 0) + prod(shape)
    return {
        "architecture": arch,
        "name": ref.kv.get("general.name") or path.name.removesuffix(".gguf"),
        "quantisation": quantisation_name(ref.kv.get("general.file_type"), by_type),
        "parameter_count": sum(prod(shape) for _, shape, _, _ in ref.tensors) if ref.tensors else None,
        "context_length": ref.kv.get(f"{arch}.context_length"),
        "has_chat_template": bool(ref.kv.get("tokenizer.chat_template")),
        "split_index": ref.kv.get("split.no", 0),
        "split_count": ref.kv.get("split.count", 1),
    }


def fields(info: GgufInfo) -> dict[str, Any]:
    return {
        name: getattr(info, name)
        for name in (
            "architecture",
            "name",
            "quantisation",
            "parameter_count",
            "context_length",
            "has_chat_template",
            "split_index",
            "split_count",
        )
    }


def reason_of(path: Path) -> str:
    with pytest.raises(GgufError) as caught:
        read_gguf_header(path)
    return caught.value.reason


# --- the real model -------------------------------------------------------------------------------


def _real_gguf() -> Path:
    value = os.environ.get("MODELDESK_TEST_GGUF")
    env_file = REPO / ".cache" / "test-servers.env"
    if not value and env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, found = line.partition("=")
            if key == "MODELDESK_TEST_GGUF":
                value = found
    if value and Path(value).is_file():
        return Path(value)
    reason = "the Gemma GGUF is not provisioned (run `make servers`)"
    if os.environ.get("MODELDESK_REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def test_the_real_gemma_header() -> None:
    path = _real_gguf()
    info = read_gguf_header(path)
    assert info.architecture == "gemma3"
    assert info.parameter_count == 268_098_176
    assert info.quantisation == "Q4_K_M"
    assert info.context_length == 32768
    assert info.has_chat_template is False
    assert info.name == "Gemma 3 270m"
    assert info.size == path.stat().st_size
    assert info.parts == (path,) and not info.is_split
    assert fields(info) == expected_fields(path)


def test_the_real_gemma_header_walked_exactly_agrees_with_the_fast_read() -> None:
    path = _real_gguf()
    size = path.stat().st_size
    readers = []
    with open(path, "rb", buffering=0) as file:
        for mode in (gguf_header.ESTIMATE, gguf_header.SEARCH, gguf_header.EXACT):
            reader = gguf_header._HeaderReader(file, size, mode)
            reader.read()
            readers.append(reader)
    assert [reader.guessed for reader in readers] == [True, True, False]
    ignored = {"guessed": None, "_buf": None, "_base": None, "_mode": None}
    assert vars(readers[0]) | ignored == vars(readers[1]) | ignored == vars(readers[2]) | ignored


# --- synthetic files against the reference --------------------------------------------------------


def _synthetic_cases() -> dict[str, tuple[list[KV], list[Tensor], dict[str, Any]]]:
    dotted = [b"." * (1 + i % 7) for i in range(6000)]  # defeats the memchr shortcut
    # Long pieces where the length is sampled, one-byte pieces after: the estimate overshoots.
    lopsided = [b"piece-%05d-" % i * 4 for i in range(4000)] + [b"x"] * 16000
    look_alike = tokens(5000)
    # A token holding the exact bytes of a plausible next key, placed where the search meets it first.
    look_alike[-3] = gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", ARR, F32, 5000)
    # Far into the array, a token that starts like a key of its namespace but is not one.
    half_alike = tokens(6000)
    half_alike[-3] = b"tokenizer.not a key"
    return {
        "gemma-like: 262,144 tokens, scores, types, then a chat template": (
            model_kvs(arch="gemma3", vocab=262_144, context=32768),
            model_tensors(vocab=262_144),
            {},
        ),
        "bpe-like: tokens, types and merges": (
            model_kvs(arch="qwen2", vocab=20_000, merges=15_000, file_type=7),
            model_tensors(vocab=20_000),
            {},
        ),
        "no chat template, no name, no file type": (
            model_kvs(name=None, chat_template=None, file_type=None),
            model_tensors(),
            {},
        ),
        "tokens are the last key": (
            [
                ("general.architecture", STR, "llama"),
                ("llama.context_length", U64, 4096),
                ("tokenizer.ggml.tokens", ARR, (STR, tokens(3000))),
            ],
            model_tensors(vocab=3000),
            {},
        ),
        "tokens followed by a key of another namespace": (
            [
                ("general.architecture", STR, "llama"),
                ("tokenizer.ggml.tokens", ARR, (STR, tokens(3000))),
                ("general.file_type", U32, 18),
                ("tokenizer.chat_template", STR, "x"),
                ("general.name", STR, "Other"),
            ],
            model_tensors(vocab=3000),
            {},
        ),
        "a token that starts like a key, and the next key in another namespace": (
            [
                ("general.architecture", STR, "llama"),
                ("tokenizer.ggml.tokens", ARR, (STR, half_alike)),
                ("general.name", STR, "Odd vocabulary"),
            ],
            model_tensors(vocab=6000),
            {},
        ),
        "a token that looks like the next key": (
            [
                ("general.architecture", STR, "llama"),
                ("tokenizer.ggml.tokens", ARR, (STR, look_alike)),
                ("tokenizer.ggml.scores", ARR, (F32, [0.0] * 5000)),
                ("tokenizer.chat_template", STR, "t"),
                ("general.file_type", U32, 2),
            ],
            model_tensors(vocab=5000),
            {},
        ),
        "an estimate that overshoots every later key": (
            [
                ("general.architecture", STR, "llama"),
                ("tokenizer.ggml.tokens", ARR, (STR, lopsided)),
                ("tokenizer.ggml.scores", ARR, (F32, [0.5] * 20000)),
                ("tokenizer.ggml.token_type", ARR, (I32, [1] * 20000)),
                ("tokenizer.chat_template", STR, "t"),
                ("general.file_type", U32, 2),
            ],
            model_tensors(vocab=20000),
            {},
        ),
        "an estimate that overshoots into a later key": (
            [
                ("general.architecture", STR, "llama"),
                ("tokenizer.ggml.tokens", ARR, (STR, lopsided)),
                ("tokenizer.ggml.scores", ARR, (F32, [0.5] * 20000)),
                ("tokenizer.ggml.precompiled_charsmap", ARR, (U8, [7] * 600_000)),
                ("tokenizer.ggml.token_type", ARR, (I32, [1] * 20000)),
                ("tokenizer.chat_template", STR, "t"),
                ("general.file_type", U32, 2),
            ],
            model_tensors(vocab=20000),
            {},
        ),
        "tokens made of dots": (
            [
                ("general.architecture", STR, "phi3"),
                ("tokenizer.ggml.tokens", ARR, (STR, dotted)),
                ("tokenizer.ggml.token_type", ARR, (I32, [1] * 6000)),
                ("phi3.context_length", U32, 4096),
            ],
            model_tensors(vocab=6000),
            {},
        ),
        "every value type, nested arrays, version 2, alignment 64": (
            [("general.architecture", STR, "mamba"), ("general.alignment", U32, 64)]
            + [(f"test.scalar_{t}", t, 1) for t in (U8, I8, U16, I16, U32, I32, U64, I64)]
            + [
                ("test.float", F32, 0.5),
                ("test.double", F64, 0.25),
                ("test.flag", BOOL, False),
                ("test.nested", ARR, (ARR, [(STR, [b"a", b"bc"]), (U16, [1, 2, 3]), (ARR, [(U8, [9])])])),
                ("test.empty_strings", ARR, (STR, [b""] * 2000)),
                ("test.after", STR, "end"),
                ("mamba.context_length", U64, 1_048_576),
            ],
            model_tensors(),
            {"version": 2, "alignment": 64},
        ),
        "a vocabulary-only file (no tensors)": (model_kvs(vocab=5000), [], {}),
        "the first part of a split model": (
            model_kvs(extra=[("split.no", U16, 0), ("split.count", U16, 3), ("split.tensors.count", I32, 9)]),
            model_tensors(),
            {},
        ),
        "file type guessed: the tensors decide": (model_kvs(file_type=1024), model_tensors(), {}),
    }


SYNTHETIC = _synthetic_cases()


@pytest.mark.parametrize("case", list(SYNTHETIC))
def test_synthetic_files_read_as_the_reference_parser_reads_them(tmp_path: Path, case: str) -> None:
    kvs, tensors, options = SYNTHETIC[case]
    path = write_gguf(tmp_path / "model.gguf", kvs, tensors, **options)
    info = read_gguf_header(path)
    assert fields(info) == expected_fields(path)
    assert info.size == path.stat().st_size and info.path == path


def test_a_bidi_override_in_the_models_name_is_taken_out(tmp_path: Path) -> None:
    # A downloaded file names itself; U+202E would show "gpj.exe" as "exe.jpg" in the library.
    path = write_gguf(tmp_path / "model.gguf", model_kvs(name="Llama \u202egpj.exe"), model_tensors())
    assert read_gguf_header(path).name == "Llama gpj.exe"


def test_a_large_vocabulary_is_skipped_without_walking_it(tmp_path: Path) -> None:
    kvs, tensors, _ = SYNTHETIC["gemma-like: 262,144 tokens, scores, types, then a chat template"]
    path = write_gguf(tmp_path / "gemma.gguf", kvs, tensors)
    with open(path, "rb", buffering=0) as file:
        reader = gguf_header._HeaderReader(file, path.stat().st_size, gguf_header.ESTIMATE)
        reader.read()
    assert reader.guessed
    assert reader.has_chat_template  # the template comes after the skipped arrays


@pytest.fixture
def reader_passes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The mode of every pass the header reader makes, in order."""
    passes: list[str] = []
    real = gguf_header._HeaderReader

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, file: Any, size: int, mode: str) -> None:
            passes.append(mode)
            super().__init__(file, size, mode)

    monkeypatch.setattr(gguf_header, "_HeaderReader", Recording)
    return passes


@pytest.mark.parametrize(
    ("case", "expected_passes"),
    [
        ("an estimate that overshoots every later key", ["estimate"]),  # searched again from the start
        ("an estimate that overshoots into a later key", ["estimate", "search"]),  # a key was skipped
    ],
)
def test_an_estimate_that_overshoots_still_finds_the_end(
    tmp_path: Path, reader_passes: list[str], case: str, expected_passes: list[str]
) -> None:
    kvs, tensors, _ = SYNTHETIC[case]
    path = write_gguf(tmp_path / "lopsided.gguf", kvs, tensors)
    assert fields(read_gguf_header(path)) == expected_fields(path)
    assert reader_passes == expected_passes


def test_a_misleading_token_falls_back_to_the_exact_walk(tmp_path: Path, reader_passes: list[str]) -> None:
    kvs, tensors, _ = SYNTHETIC["a token that looks like the next key"]
    path = write_gguf(tmp_path / "tricky.gguf", kvs, tensors)
    assert fields(read_gguf_header(path)) == expected_fields(path)
    assert reader_passes[0] == gguf_header.ESTIMATE and reader_passes[-1] == gguf_header.EXACT


def test_the_anchor_search_finds_every_occurrence_in_sparse_and_dense_text() -> None:
    rng = random.Random(3)
    anchor = b"tokenizer."
    for dots in (0.001, 0.3, 0.9):  # dense text switches from memchr to a substring search
        pieces = [
            anchor if rng.random() < 0.01 else (b"." if rng.random() < dots else b"ab\x00") for _ in range(20_000)
        ]
        chunk = b"".join(pieces)
        naive = [i for i in range(len(chunk)) if chunk.startswith(anchor, i)]
        assert list(gguf_header._occurrences(chunk, anchor)) == naive


def test_quantisation_names() -> None:
    assert FILE_TYPE_NAMES[15] == "Q4_K_M"
    assert quantisation_name(0) == "F32" and quantisation_name(32) == "BF16"
    assert quantisation_name(None, {0: 10, 12: 1000}) == "Q4_K"
    assert quantisation_name(1024, None) == "unknown"
    assert quantisation_name(None) == "unknown"


def test_a_split_part_without_a_name_is_named_after_the_model(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "Qwen3-32B-Q4_K_M-00002-of-00005.gguf", [("split.no", U16, 1)], model_tensors())
    info = read_gguf_header(path)
    assert info.name == "Qwen3-32B-Q4_K_M" and info.split_index == 1 and info.architecture == "unknown"


# --- broken files ---------------------------------------------------------------------------------


def small_model(tmp_path: Path, name: str = "small.gguf") -> tuple[Path, bytes]:
    path = write_gguf(tmp_path / name, model_kvs(vocab=1500), model_tensors(vocab=1500))
    return path, path.read_bytes()


def test_a_file_truncated_anywhere_in_its_header_says_so(tmp_path: Path) -> None:
    _, data = small_model(tmp_path)
    header_end = len(gguf_bytes(model_kvs(vocab=1500), model_tensors(vocab=1500))[0])
    cut = tmp_path / "cut.gguf"
    offsets = sorted(
        {1, 3, 4, 10, 23, 24, 30, 100, 1000, 5000, header_end // 3, header_end // 2, header_end - 200, header_end - 1}
        | set(range(24, header_end, 997))
    )
    for offset in offsets:
        cut.write_bytes(data[:offset])
        assert reason_of(cut) == TRUNCATED, offset
    cut.write_bytes(data[: header_end + 40])  # the header is whole, the tensor data is not
    assert reason_of(cut) == DATA_MISSING


def test_a_large_vocabulary_cut_short_says_truncated(tmp_path: Path) -> None:
    kvs, tensors, _ = SYNTHETIC["gemma-like: 262,144 tokens, scores, types, then a chat template"]
    header, _ = gguf_bytes(kvs, tensors)
    for fraction in (0.2, 0.5, 0.9):
        path = tmp_path / f"cut-{fraction}.gguf"
        path.write_bytes(header[: int(len(header) * fraction)])
        assert reason_of(path) == TRUNCATED


def header(version: int = 3, tensors: int = 0, kvs: int = 0, magic: bytes = b"GGUF") -> bytes:
    return magic + struct.pack("<IQQ", version, tensors, kvs)


def kv_bytes(key: str | bytes, value_type: int, value: Any) -> bytes:
    return gguf_string(key) + struct.pack("<I", value_type) + gguf_value(value_type, value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", EMPTY),
        (b"GG", TRUNCATED),
        (b"PK\x03\x04" + bytes(100), WRONG_MAGIC),
        (b"GGML" + bytes(100), WRONG_MAGIC),
        (header(version=99) + bytes(100), "GGUF version 99 is not supported (ModelDesk reads versions 2 and 3)."),
        (header(version=1) + bytes(100), "GGUF version 1 is not supported (ModelDesk reads versions 2 and 3)."),
        (b"GGUF" + struct.pack(">IQQ", 3, 0, 1) + bytes(100), BIG_ENDIAN),
        (
            header(kvs=2**60) + bytes(100),
            ("The header claims 1,152,921,504,606,846,976 metadata entries, more than a {size}-byte file can hold."),
        ),
        (
            header(tensors=2**60) + bytes(100),
            ("The header claims 1,152,921,504,606,846,976 tensors, more than a {size}-byte file can hold."),
        ),
        (
            header(kvs=1) + gguf_string("test.big") + struct.pack("<IIQ", ARR, U8, 2**60) + bytes(64),
            "The header claims 1,152,921,504,606,846,976 items in “test.big”, more than a {size}-byte file can hold.",
        ),
        (
            header(kvs=1) + gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARR, STR, 2**60) + bytes(64),
            (
                "The header claims 1,152,921,504,606,846,976 items in “tokenizer.ggml.tokens”, "
                "more than a {size}-byte file can hold."
            ),
        ),
        (header(kvs=1) + gguf_string("general.name") + struct.pack("<IQ", STR, 10**6) + b"abc", TRUNCATED),
        (
            header(kvs=1) + gguf_string("general.name") + struct.pack("<IQ", STR, 2**62) + b"abc",
            (
                "The header claims 4,611,686,018,427,387,904 bytes in “general.name”, "
                "more than a {size}-byte file can hold."
            ),
        ),
        (
            header(kvs=1) + struct.pack("<Q", 2**40) + bytes(64),
            "Metadata key #1 is 1,099,511,627,776 bytes long; the format allows 65,535.",
        ),
        (
            header(kvs=1) + gguf_string(b"general.\xff\xfe") + struct.pack("<IB", U8, 1),
            "Metadata key #1 is not valid UTF-8.",
        ),
        (
            header(kvs=1) + gguf_string("general.odd") + struct.pack("<I", 13) + bytes(8),
            "Metadata key “general.odd” has an unknown value type (13).",
        ),
        (
            header(kvs=1) + gguf_string("general.odd") + struct.pack("<IIQ", ARR, 77, 1) + bytes(8),
            "Metadata key “general.odd” holds an array of an unknown value type (77).",
        ),
        (
            header(kvs=1)
            + gguf_string("general.deep")
            + struct.pack("<IIQ", ARR, ARR, 1)
            + struct.pack("<IQ", ARR, 1) * 10
            + bytes(64),
            "The metadata “general.deep” nests arrays more than 8 deep.",
        ),
        (
            header(kvs=1) + kv_bytes("general.alignment", U32, 48),
            "The header asks for an alignment of 48, which is not a power of two.",
        ),
        (
            header(tensors=1) + gguf_string("x.weight") + struct.pack("<I5QIQ", 5, 1, 1, 1, 1, 1, 0, 0) + bytes(64),
            "Tensor #1 claims 5 dimensions, so the tensor list is damaged.",
        ),
        (
            header(tensors=1) + gguf_string("x.weight") + struct.pack("<IQIQ", 1, 8, 0, 7) + bytes(64),
            "Tensor #1 is not aligned to 32 bytes, so the tensor list is damaged.",
        ),
        (header(tensors=1) + gguf_string("x.weight") + struct.pack("<IQIQ", 1, 8, 0, 4096) + bytes(64), DATA_MISSING),
    ],
)
def test_a_broken_file_gets_its_sentence(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    assert reason_of(path) == expected.replace("{size}", f"{len(content):,}")


def test_huge_metadata_inside_a_huge_file_is_too_large(tmp_path: Path) -> None:
    # Sparse files: 300 MiB of "metadata" that the file really does hold.
    for item_type, count in ((U8, 300 * 2**20), (STR, 40 * 2**20)):
        path = tmp_path / f"huge-{item_type}.gguf"
        array = struct.pack("<IIQ", ARR, item_type, count)
        path.write_bytes(header(kvs=1) + gguf_string("tokenizer.ggml.huge") + array)
        os.truncate(path, 400 * 2**20)
        assert reason_of(path) == TOO_LARGE


def test_what_is_not_a_readable_file_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "x.gguf"
    folder.mkdir()
    assert reason_of(folder) == NOT_A_FILE
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    assert reason_of(fifo) == NOT_REGULAR  # and the open did not block
    assert reason_of(tmp_path / "missing.gguf") == "The file disappeared while it was being read."


def test_an_unreadable_file_says_permission_denied(tmp_path: Path) -> None:
    path, _ = small_model(tmp_path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root) can read the file anyway")
        assert reason_of(path) == "ModelDesk is not allowed to read this file (permission denied)."
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_random_damage_never_escapes_as_anything_but_a_reason(tmp_path: Path) -> None:
    _, data = small_model(tmp_path)
    rng = random.Random(7)
    path = tmp_path / "damaged.gguf"
    for _ in range(400):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 2, 8))):
            where = rng.randrange(min(len(damaged), 60_000))
            damaged[where] = rng.randrange(256)
        path.write_bytes(damaged)
        try:
            info = read_gguf_header(path)
        except GgufError as exc:
            reason = exc.reason
        else:
            assert isinstance(info, GgufInfo)  # never None, whatever the bytes
            continue
        assert reason.endswith(".") and "\n" not in reason


# --- a header from the first bytes of a file elsewhere (an HTTP range) --------------------------


def test_a_prefix_long_enough_reads_like_the_file_and_a_short_one_asks_for_more(tmp_path: Path) -> None:
    path, data = small_model(tmp_path)
    header_end = len(gguf_bytes(model_kvs(vocab=1500), model_tensors(vocab=1500))[0])
    whole = read_gguf_header(path)
    info, numbers = gguf_header.read_gguf_prefix(data[: header_end + 64], len(data), "small.gguf")
    assert (info.architecture, info.quantisation, info.parameter_count) == (
        whole.architecture,
        whole.quantisation,
        whole.parameter_count,
    )
    assert info.size == len(data)  # the whole file's, not the prefix's
    assert numbers.get(f"{whole.architecture}.context_length") == whole.context_length
    for cut in (10, 1000, header_end // 2, header_end - 1):
        with pytest.raises(gguf_header.HeaderCut) as more:
            gguf_header.read_gguf_prefix(data[:cut], len(data), "small.gguf")
        assert more.value.wanted > cut


def test_a_prefix_of_a_file_that_is_not_gguf_is_said_not_asked_again() -> None:
    with pytest.raises(GgufError) as caught:
        gguf_header.read_gguf_prefix(b"<html>Not a model</html>" * 100, 10**9, "page.gguf")
    assert not isinstance(caught.value, gguf_header.HeaderCut) and caught.value.reason.startswith("This is not a GGUF")
