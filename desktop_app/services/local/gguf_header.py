"""Reading one GGUF file's header: what it says, or one sentence on why the file cannot be used.

A GGUF file starts with "GGUF", a u32 version, a u64 tensor count and a u64 metadata count, then
the metadata as key/value pairs, then one entry per tensor (name, shape, type, offset), then the
tensor data. Everything is little-endian; strings are a u64 byte length and UTF-8 bytes; an array
is a u32 item type, a u64 item count and the items. `read_gguf_header` reads the metadata and the
tensor list and never the tensor data.

Why it is fast. A real header is mostly tokenizer: Gemma 3 stores 262,144 token strings, as many
scores and as many token types. Arrays of numbers are skipped by arithmetic. An array of strings
cannot be: each length says where the next one starts, and walking them all in Python is far too
slow for a library of a thousand models (benchmarks/README.md). Instead the reader searches, at C
speed, for the key that follows the array: a u64 length, then a key in the same namespace
("tokenizer." after "tokenizer.ggml.tokens"), then a valid value type. Where the search starts
decides what it costs, so it is made in up to three passes over the file:

  ESTIMATE  from where the array should end, less a quarter: a few hundred strings sampled inside
            the array give their mean length;
  SEARCH    from where the array would end if every string were empty (8 bytes each), the
            earliest place it can end;
  EXACT     walking every string, no guess at all.

A token that looked like a key, or an estimate past the end, would send the parse astray, so a
guessed skip is only trusted if everything after it holds together: every later key plausible and
new, every tensor entry sane (a name, 1-4 dimensions, an aligned offset) and the tensor data within
the file. Otherwise the next pass runs, and only a pass that guessed nothing may call the file
broken.

`read_gguf_header` blocks: `desktop_app.services.local.gguf` (the library) calls it on a worker thread.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import struct
from collections.abc import Iterator
from math import prod
from pathlib import Path
from typing import Any, BinaryIO

from desktop_app.domain.gguf import UNKNOWN, GgufInfo, quantisation_name
from desktop_app.domain.text import without_bidi_controls

log = logging.getLogger(__name__)

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)  # version 1 had 32-bit counts and lengths; llama.cpp dropped it too
DEFAULT_ALIGNMENT = 32
# No real header comes close: Gemma's 262,144-token vocabulary is 6.5 MB with every tensor entry.
MAX_HEADER_BYTES = 256 * 1024 * 1024
MAX_KEY_BYTES = 65_535  # the format's limit
MAX_TENSOR_NAME_BYTES = 1024  # ggml allows 63; anything near this is damage, not a name
MAX_DIMENSIONS = 4  # GGML_MAX_DIMS
MAX_ARRAY_DEPTH = 8

_WINDOW = 64 * 1024  # bytes read at a time while parsing
_SEARCH_CHUNK = 256 * 1024  # bytes read at a time while looking for the end of a string array
_WALK_BELOW = 1024  # string arrays this short are walked; searching pays off for longer ones
_MAX_SEARCH_PER_STRING = 256  # search this far past the shortest end (per string) before walking
# One false hit of the memchr search costs about what `bytes.find` spends on this many bytes.
_BYTES_PER_MISS = 700
# Where the end of a long string array is searched from. Pass 1 (ESTIMATE) starts where a sample
# of its strings says the end will be, less a quarter; pass 2 (SEARCH) from where the array would
# end if every string were empty; pass 3 (EXACT) walks every string.
ESTIMATE, SEARCH, EXACT = "estimate", "search", "exact"
_SAMPLE_AT = (30, 60, 90)  # percent of the way to the shortest possible end
_SAMPLE_BYTES = 16 * 1024
_SAMPLE_STRINGS = 256  # per sample
_LONGEST_SAMPLED = 4096
_ESTIMATE_SHARE = 0.75
_ZERO_RUN = bytes(6)
_NAME_BYTES = 4096  # general.name and general.architecture are read up to this length

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ARRAY_HEAD = struct.Struct("<IQ")  # item type, item count
# a tensor entry after its dimension count: the shape, the ggml type, the data offset
_TENSOR_TAILS = [struct.Struct(f"<{dims}QIQ") for dims in range(MAX_DIMENSIONS + 1)]
_HEAD = struct.Struct("<4sIQQ")  # magic, version, tensor count, metadata count

_STRING, _ARRAY = 8, 9
# value type -> (size, format) of the fixed-size types
_SCALARS: dict[int, tuple[int, struct.Struct]] = {
    0: (1, struct.Struct("<B")),
    1: (1, struct.Struct("<b")),
    2: (2, struct.Struct("<H")),
    3: (2, struct.Struct("<h")),
    4: (4, struct.Struct("<I")),
    5: (4, struct.Struct("<i")),
    6: (4, struct.Struct("<f")),
    7: (1, struct.Struct("<?")),
    10: (8, struct.Struct("<Q")),
    11: (8, struct.Struct("<q")),
    12: (8, struct.Struct("<d")),
}
_INTEGER_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_SCALAR_SIZES = {vtype: size for vtype, (size, _) in _SCALARS.items()}
_MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, a one-byte value
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8  # name length, dimension count, type, offset

_PLAUSIBLE_KEY = re.compile(rb"[A-Za-z0-9_.\-]+\Z")
_PLAUSIBLE_NAME = re.compile(rb"[\x21-\x7e]{1,256}\Z")
# one part of a model split into files; the library folds the parts into one model
SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)

# The one-sentence reasons a file is not usable.
EMPTY = "The file is empty."
WRONG_MAGIC = "This is not a GGUF file: it does not start with “GGUF”."
BIG_ENDIAN = "This GGUF file is big-endian (made for machines like IBM Z), which ModelDesk cannot read."
TRUNCATED = "The file ends inside its header: it is truncated, or still downloading."
TOO_LARGE = f"The metadata is larger than {MAX_HEADER_BYTES // 2**20} MiB, far more than any real model has."
DATA_MISSING = "The file ends before its tensor data does: it is truncated, or still downloading."
NOT_A_FILE = "This is a folder, not a file."
NOT_REGULAR = "This is not a regular file."
DENIED = "ModelDesk is not allowed to read this file (permission denied)."
VANISHED = "The file disappeared while it was being read."
DAMAGED = "The header is damaged and could not be read."
BROKEN_LINK = "This is a link to a file that no longer exists."


class GgufError(Exception):
    """A file that cannot be used as a GGUF model; `reason` is one sentence for the user.

    `transient` marks what the file's bytes do not decide (permissions, I/O), which is never
    cached: a chmod changes neither the size nor the mtime the cache is keyed by.
    """

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def _shown(key: str) -> str:
    """A key as a sentence may quote it: printable, and not too long."""
    text = "".join(char if char.isprintable() else "?" for char in key[:80])
    return text + "…" if len(key) > 80 else text


def _unsupported_version(version: int) -> str:
    return f"GGUF version {version} is not supported (ModelDesk reads versions 2 and 3)."


class _HeaderReader:
    """One pass over one file's header; `mode` says how long string arrays are skipped."""

    def __init__(self, file: BinaryIO, size: int, mode: str) -> None:
        self._file = file
        self._size = size
        self._limit = min(size, MAX_HEADER_BYTES)
        self._mode = mode
        self._buf = b""
        self._base = 0  # file offset of self._buf[0]
        self.guessed = False
        self._keys: set[str] = set()  # a repeat is only held against a guess
        # What the header says, filled in as the keys go by.
        self.architecture: str | None = None
        self.name: str | None = None
        self.file_type: int | None = None
        self.alignment = DEFAULT_ALIGNMENT
        self.split_index = 0
        self.split_count = 1
        self.has_chat_template = False
        self.context_lengths: dict[str, int] = {}
        self.tensor_count = 0
        self.parameter_count = 0
        self.tensor_elements: dict[int, int] = {}
        self.shape_numbers: dict[str, int] = {}  # <arch>.block_count and the attention sizes

    # --- reading -----------------------------------------------------------------------------

    def _at(self, pos: int, length: int) -> int:
        """Make file bytes [pos, pos + length) readable in self._buf; return pos's index there."""
        index = pos - self._base
        if index >= 0 and index + length <= len(self._buf):
            return index
        if pos + length > self._size:
            raise GgufError(TRUNCATED)
        self._file.seek(pos)
        self._buf = self._file.read(max(length, _WINDOW))
        self._base = pos
        if len(self._buf) < length:  # the file shrank since it was measured
            raise GgufError(TRUNCATED)
        return 0

    def _beyond(self, pos: int) -> GgufError:
        return GgufError(TRUNCATED if pos > self._size else TOO_LARGE)

    def _claim(self, start: int, end: int, count: int, what: str) -> None:
        """Check that `count` things said to span [start, end) can be there.

        A claim no real header could make is absurd; one that merely runs past the end of the
        file means the file is cut short (the usual case: a download that stopped).
        """
        if end <= self._limit:
            return
        if end > self._size:
            if end - start > MAX_HEADER_BYTES:
                raise GgufError(f"The header claims {count:,} {what}, more than a {self._size:,}-byte file can hold.")
            raise GgufError(TRUNCATED)
        raise GgufError(TOO_LARGE)

    # --- the header --------------------------------------------------------------------------

    def read(self) -> None:
        size = self._size
        if size == 0:
            raise GgufError(EMPTY)
        self._at(0, min(size, _HEAD.size))
        magic = self._buf[:4]
        if magic != MAGIC[: len(magic)]:
            raise GgufError(WRONG_MAGIC)
        if size >= 8:
            version = _U32.unpack_from(self._buf, 4)[0]
            if version not in SUPPORTED_VERSIONS:
                swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
                raise GgufError(BIG_ENDIAN if swapped in SUPPORTED_VERSIONS else _unsupported_version(version))
        if size < _HEAD.size:
            raise GgufError(TRUNCATED)
        _, _, tensor_count, kv_count = _HEAD.unpack_from(self._buf, 0)
        after_keys = _HEAD.size + kv_count * _MIN_KV_BYTES
        self._claim(_HEAD.size, after_keys, kv_count, "metadata entries")
        self._claim(after_keys, after_keys + tensor_count * _MIN_TENSOR_BYTES, tensor_count, "tensors")
        self.tensor_count = tensor_count
        pos = _HEAD.size
        for number in range(1, kv_count + 1):
            pos = self._key_value(pos, number, kv_count - number)
        if pos > size:  # the last value ran past the end
            raise GgufError(TRUNCATED)
        self._tensors(pos)

    def _key_value(self, pos: int, number: int, remaining: int) -> int:
        index = self._at(pos, 8)
        key_length = _U64.unpack_from(self._buf, index)[0]
        if key_length > MAX_KEY_BYTES:
            raise GgufError(f"Metadata key #{number} is {key_length:,} bytes long; the format allows 65,535.")
        index = self._at(pos + 8, key_length + 4)
        buf = self._buf
        try:
            key = buf[index : index + key_length].decode("utf-8")
        except UnicodeDecodeError:
            raise GgufError(f"Metadata key #{number} is not valid UTF-8.") from None
        if self.guessed and (not _PLAUSIBLE_KEY.match(buf, index, index + key_length) or key in self._keys):
            raise GgufError(DAMAGED)  # past a guessed skip, only what a real writer produces is believed
        self._keys.add(key)
        value_type = _U32.unpack_from(buf, index + key_length)[0]
        pos += 12 + key_length
        scalar = _SCALARS.get(value_type)
        if scalar is not None:
            size, fmt = scalar
            if key in _WANTED_NUMBERS or key.endswith(_NUMBER_SUFFIXES):
                self._number(key, value_type, fmt.unpack_from(self._buf, self._at(pos, size))[0])
            return pos + size
        if value_type == _STRING:
            index = self._at(pos, 8)
            length = _U64.unpack_from(self._buf, index)[0]
            end = pos + 8 + length
            self._claim(pos, end, length, f"bytes in “{_shown(key)}”")
            if key in _WANTED_STRINGS:
                self._string(key, length, pos + 8)
            return end
        if value_type == _ARRAY:
            index = self._at(pos, 12)
            item_type, count = _ARRAY_HEAD.unpack_from(self._buf, index)
            end = self._skip_array(key, item_type, count, pos + 12, remaining, depth=1)
            if end > self._limit:
                raise self._beyond(end)
            return end
        raise GgufError(f"Metadata key “{_shown(key)}” has an unknown value type ({value_type}).")

    def _number(self, key: str, value_type: int, value: Any) -> None:
        if value_type not in _INTEGER_TYPES:
            return
        if key == "general.file_type":
            self.file_type = value
        elif key == "general.alignment":
            if value <= 0 or value & (value - 1):
                raise GgufError(f"The header asks for an alignment of {value}, which is not a power of two.")
            self.alignment = value
        elif key == "split.no":
            self.split_index = value
        elif key == "split.count":
            self.split_count = max(1, value)
        elif key.endswith(".context_length") and key.count(".") == 1 and value > 0:
            self.context_lengths[key[: -len(".context_length")]] = value
            self.shape_numbers[key] = value
        elif key.endswith(_SHAPE_KEYS) and value > 0:
            self.shape_numbers[key] = value

    def _string(self, key: str, length: int, pos: int) -> None:
        if key == "tokenizer.chat_template":
            self.has_chat_template = length > 0
            return
        take = min(length, _NAME_BYTES)
        index = self._at(pos, take)
        text = without_bidi_controls(self._buf[index : index + take].decode("utf-8", errors="replace")).strip()
        if key == "general.architecture":
            self.architecture = text or None
        elif key == "general.name":
            self.name = text or None

    # --- arrays ------------------------------------------------------------------------------

    def _skip_array(self, key: str, item_type: int, count: int, pos: int, remaining: int, *, depth: int) -> int:
        """The offset just past an array's items, which start at `pos`."""
        size = _SCALAR_SIZES.get(item_type)
        if size is not None:
            end = pos + count * size
            self._claim(pos, end, count, f"items in “{_shown(key)}”")
            return end
        if item_type == _STRING:
            shortest_end = pos + 8 * count  # every string takes at least its length
            self._claim(pos, shortest_end, count, f"items in “{_shown(key)}”")
            if self._mode == EXACT or depth > 1 or count < _WALK_BELOW or remaining == 0:
                return self._walk_strings(pos, count)
            return self._search_strings_end(key, pos, count)
        if item_type == _ARRAY:
            self._claim(pos, pos + 12 * count, count, f"items in “{_shown(key)}”")
            if depth >= MAX_ARRAY_DEPTH:
                raise GgufError(f"The metadata “{_shown(key)}” nests arrays more than {MAX_ARRAY_DEPTH} deep.")
            for _ in range(count):
                index = self._at(pos, 12)
                inner_type, inner_count = _ARRAY_HEAD.unpack_from(self._buf, index)
                pos = self._skip_array(key, inner_type, inner_count, pos + 12, remaining, depth=depth + 1)
                if pos > self._limit:
                    raise self._beyond(pos)
            return pos
        raise GgufError(f"Metadata key “{_shown(key)}” holds an array of an unknown value type ({item_type}).")

    def _walk_strings(self, pos: int, count: int) -> int:
        """Step over `count` strings one length at a time: exact, and the slowest way."""
        limit = self._limit
        unpack = _U64.unpack_from
        if pos < self._base:  # a search for the array's end moved the window past its start
            self._at(pos, 8)
        buf, base = self._buf, self._base
        end = base + len(buf)
        for _ in range(count):
            if pos + 8 > end:
                self._at(pos, 8)
                buf, base = self._buf, self._base
                end = base + len(buf)
            pos += 8 + unpack(buf, pos - base)[0]
            if pos > limit:
                raise self._beyond(pos)
        return pos

    def _search_strings_end(self, key: str, pos: int, count: int) -> int:
        """Where the next key starts, found by searching for it; walks if no candidate holds up."""
        namespace = key.partition(".")[0]
        if not namespace or namespace == key:
            return self._walk_strings(pos, count)
        anchor = namespace.encode() + b"."
        shortest_end = pos + 8 * count
        stop = min(self._limit, shortest_end + _MAX_SEARCH_PER_STRING * count + _SEARCH_CHUNK)
        start = shortest_end
        if self._mode == ESTIMATE:
            mean = self._mean_length(pos, shortest_end)
            if mean is not None:
                start = min(stop, shortest_end + int(count * mean * _ESTIMATE_SHARE))
        found = self._search(anchor, start, stop)
        if found is None and start > shortest_end:  # nothing after the estimate: look before it
            found = self._search(anchor, shortest_end, start + len(anchor) + 8)
        if found is None:
            return self._walk_strings(pos, count)
        self.guessed = True
        return found

    def _search(self, anchor: bytes, start: int, stop: int) -> int | None:
        """The first offset in [start, stop) where a key/value entry with a key beginning with
        `anchor` plausibly starts."""
        scan = start + 8  # the key text; its length sits in the 8 bytes before it
        overlap = len(anchor) - 1
        file = self._file
        while scan < stop:
            file.seek(scan)
            chunk = file.read(min(_SEARCH_CHUNK, stop - scan))
            if len(chunk) <= overlap:
                break
            for found in _occurrences(chunk, anchor):
                candidate = scan + found - 8
                if self._plausible_key_value(candidate, len(anchor)):
                    return candidate
            scan += len(chunk) - overlap
        return None

    def _mean_length(self, start: int, shortest_end: int) -> float | None:
        """The mean length of the strings of an array, from a few hundred of them, or None.

        Samples are taken in [start, shortest_end), which is inside the array whatever its
        strings hold. A sample starts at a string boundary: a length below 2**16 is the only
        place in token text where six zero bytes follow one another.
        """
        unpack = _U64.unpack_from
        file = self._file
        total = strings = 0
        for percent in _SAMPLE_AT:
            file.seek(start + (shortest_end - start) * percent // 100)
            blob = file.read(_SAMPLE_BYTES)
            at = _string_boundary(blob)
            if at is None:
                continue
            for _ in range(_SAMPLE_STRINGS):
                if at + 8 > len(blob):
                    break
                length = unpack(blob, at)[0]
                if length > _LONGEST_SAMPLED:
                    break
                at += 8 + length
                total += length
                strings += 1
        return total / strings if strings >= _SAMPLE_STRINGS else None

    def _plausible_key_value(self, pos: int, anchor_length: int) -> bool:
        """Whether a key/value entry could start at `pos`: a sane key, a known type, a value that fits."""
        try:
            index = self._at(pos, 8)
            key_length = _U64.unpack_from(self._buf, index)[0]
            if not anchor_length < key_length <= 256:
                return False
            index = self._at(pos + 8, key_length + 16)
        except GgufError:
            return False
        buf = self._buf
        if not _PLAUSIBLE_KEY.match(buf, index, index + key_length):
            return False
        value_at = index + key_length + 4
        value_type = _U32.unpack_from(buf, value_at - 4)[0]
        remaining = self._size - (pos + 12 + key_length)
        if value_type in _SCALAR_SIZES:
            return True
        if value_type == _STRING:
            return _U64.unpack_from(buf, value_at)[0] <= remaining - 8
        if value_type == _ARRAY:
            item_type, count = _ARRAY_HEAD.unpack_from(buf, value_at)
            smallest = _SCALAR_SIZES.get(item_type, 8 if item_type == _STRING else 12)
            return item_type <= 12 and count * smallest <= remaining - 12
        return False

    # --- tensors -----------------------------------------------------------------------------

    def _tensors(self, pos: int) -> None:
        """Count the weights per tensor type; check each entry is sane and the data fits the file."""
        alignment, size, limit = self.alignment, self._size, self._limit
        unpack_u64, unpack_u32, tails = _U64.unpack_from, _U32.unpack_from, _TENSOR_TAILS
        elements = self.tensor_elements
        buf, base = self._buf, self._base
        parameters = last_offset = 0
        for number in range(1, self.tensor_count + 1):
            if pos + 8 > base + len(buf):
                self._at(pos, 8)
                buf, base = self._buf, self._base
            name_length = unpack_u64(buf, pos - base)[0]
            if name_length > MAX_TENSOR_NAME_BYTES:
                raise GgufError(
                    f"Tensor #{number} has a name {name_length:,} bytes long, so the tensor list is damaged."
                )
            longest = 8 + name_length + 4 + tails[MAX_DIMENSIONS].size
            if pos + longest > base + len(buf):
                self._at(pos, min(longest, size - pos))
                buf, base = self._buf, self._base
            index = pos - base + 8 + name_length
            if index + 4 > len(buf):
                raise GgufError(TRUNCATED)
            dims = unpack_u32(buf, index)[0]
            if dims > MAX_DIMENSIONS:
                raise GgufError(f"Tensor #{number} claims {dims:,} dimensions, so the tensor list is damaged.")
            tail = tails[dims]
            if index + 4 + tail.size > len(buf):
                raise GgufError(TRUNCATED)
            fields = tail.unpack_from(buf, index + 4)  # the shape, the type, the offset
            if self.guessed and not (
                dims and min(fields[:dims]) > 0 and _PLAUSIBLE_NAME.match(buf, index - name_length, index)
            ):
                raise GgufError(DAMAGED)
            pos += 12 + name_length + tail.size
            offset = fields[-1]
            if offset % alignment:
                raise GgufError(f"Tensor #{number} is not aligned to {alignment} bytes, so the tensor list is damaged.")
            count = prod(fields[:dims])
            parameters += count
            elements[fields[-2]] = elements.get(fields[-2], 0) + count
            last_offset = max(last_offset, offset)
            if pos > limit:
                raise self._beyond(pos)
        data_start = pos + (-pos % alignment)
        if self.tensor_count and data_start + last_offset > size:
            raise GgufError(DATA_MISSING)
        self.parameter_count = parameters


_WANTED_NUMBERS = frozenset({"general.file_type", "general.alignment", "split.no", "split.count"})
# what the KV cache's size depends on (domain.hub.shape_from_metadata), after "<arch>."
_SHAPE_KEYS = (
    ".block_count",
    ".embedding_length",
    ".attention.head_count",
    ".attention.head_count_kv",
    ".attention.key_length",
    ".attention.value_length",
)
_NUMBER_SUFFIXES = (".context_length", *_SHAPE_KEYS)
_WANTED_STRINGS = frozenset({"general.architecture", "general.name", "tokenizer.chat_template"})


def _occurrences(chunk: bytes, anchor: bytes) -> Iterator[int]:
    """Where `anchor` starts in `chunk`, in order.

    Token text is full of the letters of "tokenizer." and of zero bytes, which defeats the skip
    heuristics of `bytes.find`. The anchor's last byte, ".", is rare in most of it, and a one-byte
    `find` is a `memchr`, several times faster, so the search jumps from "." to "." and compares
    there. Each "." that is not the anchor costs a trip through Python, though, so where they come
    more often than one per _BYTES_PER_MISS bytes (code-heavy vocabularies, merges) the rest of
    the chunk goes to the plain substring search.
    """
    last = anchor[-1:]
    back = len(anchor) - 1
    misses = 0
    index = chunk.find(last, back)
    while index >= 0:
        if chunk.startswith(anchor, index - back):
            yield index - back
        else:
            misses += 1
            if misses * _BYTES_PER_MISS > index + 64 * _BYTES_PER_MISS:
                start = chunk.find(anchor, index - back + 1)
                while start >= 0:
                    yield start
                    start = chunk.find(anchor, start + 1)
                return
        index = chunk.find(last, index + 1)


def _string_boundary(blob: bytes) -> int | None:
    """An offset in `blob` where a run of length-prefixed strings plausibly starts."""
    unpack = _U64.unpack_from
    run = blob.find(_ZERO_RUN)
    while 0 <= run < len(blob) - 1024:
        for at in (run - 1, run - 2, run):  # a length below 256, below 65,536, or zero
            if at < 0:
                continue
            position, nonempty = at, 0
            for _ in range(16):
                length = unpack(blob, position)[0]
                if length > _LONGEST_SAMPLED or position + 8 + length + 8 > len(blob):
                    break
                position += 8 + length
                nonempty += length > 0
            else:
                if nonempty >= 8:  # not a stretch of zeros
                    return at
        run = blob.find(_ZERO_RUN, run + 8)
    return None


def _stem(path: Path) -> str:
    match = SPLIT_NAME.match(path.name)
    if match:
        return match["prefix"]
    return path.name[:-5] if path.name.lower().endswith(".gguf") else path.name


def _read(file: BinaryIO, size: int) -> _HeaderReader:
    for mode in (ESTIMATE, SEARCH):
        reader = _HeaderReader(file, size, mode)
        try:
            reader.read()
            return reader
        except GgufError:
            if not reader.guessed:  # nothing was guessed, so the error is the file's
                raise
    reader = _HeaderReader(file, size, EXACT)
    reader.read()
    return reader


def _info(reader: _HeaderReader, path: Path, size: int, mtime: float) -> GgufInfo:
    architecture = reader.architecture or UNKNOWN
    return GgufInfo(
        path=path,
        size=size,
        mtime=mtime,
        architecture=architecture,
        name=reader.name or _stem(path),
        quantisation=quantisation_name(reader.file_type, reader.tensor_elements),
        parameter_count=reader.parameter_count if reader.tensor_count else None,
        context_length=reader.context_lengths.get(architecture),
        has_chat_template=reader.has_chat_template,
        split_index=reader.split_index,
        split_count=reader.split_count,
        parts=(path,),
    )


def _parse(file: BinaryIO, path: Path, st: os.stat_result) -> GgufInfo:
    return _info(_read(file, st.st_size), path, st.st_size, st.st_mtime)


class HeaderCut(Exception):
    """The bytes given end before the header does: fetch more (`wanted` is a size that may do)."""

    def __init__(self, wanted: int) -> None:
        super().__init__(f"the header needs more than the first {wanted // 2:,} bytes")
        self.wanted = wanted


class _Prefix:
    """The first bytes of a bigger file, read like the file; notes a read the prefix cut short."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._pos = data, 0
        self._whole = len(data) >= size
        self.cut = False

    def seek(self, pos: int) -> int:
        self._pos = pos
        return pos

    def read(self, length: int) -> bytes:
        chunk = self._data[self._pos : self._pos + length]
        if len(chunk) < length and not self._whole:
            self.cut = True
        self._pos += len(chunk)
        return chunk


def read_gguf_prefix(data: bytes, size: int, name: str) -> tuple[GgufInfo, dict[str, int]]:
    """What a GGUF header says, from the first bytes of a `size`-byte file (an HTTP range, say).

    Also returns the header's shape numbers (see `domain.hub.shape_from_metadata`). Raises
    `HeaderCut` when `data` ends inside the header, GgufError when the file cannot be used.
    """
    prefix = _Prefix(data, size)
    try:
        reader = _read(prefix, size)  # type: ignore[arg-type]  # seek and read are all it uses
    except GgufError as exc:
        if prefix.cut and exc.reason == TRUNCATED:  # ended where the prefix did, not the file
            raise HeaderCut(min(size, max(2 * len(data), 1 << 20))) from None
        raise
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError):
        raise GgufError(DAMAGED) from None
    return _info(reader, Path(name), size, 0.0), dict(reader.shape_numbers)


def read_gguf_header(path: Path | str) -> GgufInfo:
    """What one GGUF file's header says; raises GgufError (one sentence) if it cannot be used.

    Blocking: call it on a worker thread.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise GgufError(NOT_A_FILE)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the open below forever
            raise GgufError(NOT_REGULAR)
        with open(path, "rb", buffering=0) as file:
            return _parse(file, path, os.fstat(file.fileno()))
    except PermissionError:
        raise GgufError(DENIED, transient=True) from None
    except IsADirectoryError:
        raise GgufError(NOT_A_FILE) from None
    except FileNotFoundError:
        raise GgufError(VANISHED, transient=True) from None
    except OSError as exc:
        raise GgufError(f"The file could not be read ({exc.strerror or exc}).", transient=True) from None
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError):
        log.warning("unexpected failure reading %s", path, exc_info=True)
        raise GgufError(DAMAGED) from None
