"""The GGUF library: scans that find, group and remember model files, on a worker thread.

How a single header is read, and what a broken file is called, is `test_gguf_header.py`'s part.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from desktop_app.domain.gguf import GgufInfo
from desktop_app.services.local import gguf as gguf_service
from desktop_app.services.local.gguf import (
    BROKEN_LINK,
    TRUNCATED,
    WRONG_MAGIC,
    GgufError,
    GgufLibrary,
    default_folders,
    read_gguf_header,
)
from tests.unit.gguf_files import (
    I32,
    KV,
    U16,
    Tensor,
    model_kvs,
    model_tensors,
    write_gguf,
)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Every file the library opens, with the thread that opened it."""
    opened: list[tuple[Path, str]] = []
    real = gguf_service.read_gguf_header

    def counting(path: Path | str) -> GgufInfo:
        opened.append((Path(path), threading.current_thread().name))
        return real(path)

    monkeypatch.setattr(gguf_service, "read_gguf_header", counting)
    return opened


def quick_model(path: Path, *, name: str = "M", extra: Sequence[KV] = ()) -> Path:
    return write_gguf(path, model_kvs(vocab=300, name=name, extra=extra), model_tensors(vocab=300))


@pytest.mark.asyncio
async def test_a_scan_finds_models_in_nested_folders_on_a_worker_thread(
    tmp_path: Path, reads: list[tuple[Path, str]]
) -> None:
    root = tmp_path / "models"
    a = quick_model(root / "a.gguf", name="A")
    b = quick_model(root / "publisher" / "repo" / "deep" / "b.GGUF", name="B")
    quick_model(root / ".hidden" / "c.gguf")
    (root / "notes.txt").write_text("not a model")
    (root / "x.gguf").mkdir()  # a folder with a model's name is just a folder
    broken = root / "publisher" / "broken.gguf"
    broken.write_bytes(b"not gguf at all")
    library = GgufLibrary(tmp_path / "cache.json", folders=[root, tmp_path / "does-not-exist"])
    result = await library.scan()
    assert [info.path for info in result.infos] == [a, b]
    assert [info.name for info in result.infos] == ["A", "B"]
    assert [(p.path, p.reason) for p in result.problems] == [(broken, WRONG_MAGIC)]
    assert {thread for _, thread in reads} and threading.main_thread().name not in {t for _, t in reads}


@pytest.mark.asyncio
async def test_the_hugging_face_hub_layout_with_links(tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--org--Model-GGUF"
    blob = quick_model(repo / "blobs" / "5e3c1b2a", name="Hub Model")
    for revision in ("aaaa1111", "bbbb2222"):  # two revisions sharing one blob
        link = repo / "snapshots" / revision / "model-Q4_K_M.gguf"
        link.parent.mkdir(parents=True)
        link.symlink_to(Path("../../blobs/5e3c1b2a"))
    dangling = repo / "snapshots" / "bbbb2222" / "gone-Q8_0.gguf"
    dangling.symlink_to(Path("../../blobs/deleted"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbbb2222")
    result = await GgufLibrary(tmp_path / "cache.json", folders=[tmp_path / "hub"]).scan()
    assert [info.path for info in result.infos] == [repo / "snapshots" / "aaaa1111" / "model-Q4_K_M.gguf"]
    assert result.infos[0].name == "Hub Model" and result.infos[0].size == blob.stat().st_size
    assert [(p.path, p.reason) for p in result.problems] == [(dangling, BROKEN_LINK)]


@pytest.mark.asyncio
async def test_cache_hits_do_not_open_files_and_changes_are_read_again(
    tmp_path: Path, reads: list[tuple[Path, str]]
) -> None:
    root = tmp_path / "models"
    first = quick_model(root / "one.gguf", name="One")
    quick_model(root / "two.gguf", name="Two")
    (root / "bad.gguf").write_bytes(b"GGUF" + struct.pack("<I", 99))
    cache = tmp_path / "cache" / "gguf.json"
    before = await GgufLibrary(cache, folders=[root]).scan()
    assert len(reads) == 3 and cache.is_file()

    reads.clear()
    again = await GgufLibrary(cache, folders=[root]).scan()  # a fresh library: the cache file only
    assert reads == []
    assert again == before

    reads.clear()
    st = first.stat()
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    library = GgufLibrary(cache, folders=[root])
    after = await library.scan()
    assert [path for path, _ in reads] == [first]
    assert after.infos[0].mtime == pytest.approx(st.st_mtime + 1)

    reads.clear()
    quick_model(first, name="One, rewritten")  # same path, new content
    third = await library.scan()
    assert [path for path, _ in reads] == [first]
    assert third.infos[0].name == "One, rewritten"
    assert [p.reason for p in third.problems] == [
        "GGUF version 99 is not supported (ModelDesk reads versions 2 and 3)."
    ]


@pytest.mark.asyncio
async def test_a_corrupt_cache_is_ignored_and_replaced(tmp_path: Path, reads: list[tuple[Path, str]]) -> None:
    root = tmp_path / "models"
    quick_model(root / "one.gguf")
    cache = tmp_path / "gguf.json"
    for garbage in (
        b"\x00not json",
        b"[]",
        b'{"version": 1, "files": {"/x": {"size": "big"}}}',
        json.dumps(
            {"version": 1, "files": {str(root / "one.gguf"): {"size": 1, "mtime_ns": 2, "info": {"name": 3}}}}
        ).encode(),
    ):
        cache.write_bytes(garbage)
        reads.clear()
        result = await GgufLibrary(cache, folders=[root]).scan()
        assert len(result.infos) == 1 and len(reads) == 1
        assert json.loads(cache.read_bytes())["version"] == 1


@pytest.mark.asyncio
async def test_removed_files_leave_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "models"
    gone = quick_model(root / "gone.gguf")
    quick_model(root / "kept.gguf")
    cache = tmp_path / "gguf.json"
    library = GgufLibrary(cache, folders=[root])
    await library.scan()
    gone.unlink()
    result = await library.scan()
    assert [info.path.name for info in result.infos] == ["kept.gguf"]
    assert list(json.loads(cache.read_bytes())["files"]) == [str(root / "kept.gguf")]


@pytest.mark.asyncio
async def test_split_models_are_one_model(tmp_path: Path) -> None:
    root = tmp_path / "models"
    parts = []
    for number in range(3):
        kvs = [("split.no", U16, number), ("split.count", U16, 3), ("split.tensors.count", I32, 6)]
        if number == 0:
            parts.append(quick_model(root / "big-00001-of-00003.gguf", name="Big", extra=kvs))
        else:
            parts.append(
                write_gguf(
                    root / f"big-0000{number + 1}-of-00003.gguf",
                    kvs,
                    [Tensor(f"blk.{number}.ffn_up.weight", (64, 256))],
                )
            )
    quick_model(root / "half-00001-of-00002.gguf")
    result = await GgufLibrary(tmp_path / "cache.json", folders=[root]).scan()
    [big] = result.infos
    assert big.path == parts[0] and big.parts == tuple(parts)
    assert big.is_split and big.split_count == 3 and big.name == "Big"
    assert big.size == sum(part.stat().st_size for part in parts)
    first_params = read_gguf_header(parts[0]).parameter_count
    assert first_params is not None and big.parameter_count == first_params + 2 * 64 * 256
    assert [(p.path.name, p.reason) for p in result.problems] == [
        ("half-00001-of-00002.gguf", "The model cannot load: 1 of its 2 parts is missing (half-00002-of-00002.gguf).")
    ]


@pytest.mark.asyncio
async def test_a_split_model_with_a_broken_part_is_explained_by_that_part(tmp_path: Path) -> None:
    root = tmp_path / "models"
    quick_model(root / "m-00001-of-00002.gguf", extra=[("split.count", U16, 2)])
    (root / "m-00002-of-00002.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1))  # cut short
    quick_model(root / "odd-00003-of-00002.gguf", name="Odd")  # not a split name that makes sense
    result = await GgufLibrary(tmp_path / "cache.json", folders=[root]).scan()
    assert [info.name for info in result.infos] == ["Odd"]
    assert [(p.path.name, p.reason) for p in result.problems] == [("m-00002-of-00002.gguf", TRUNCATED)]


@pytest.mark.asyncio
async def test_a_transient_failure_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = quick_model(tmp_path / "models" / "one.gguf")
    real = gguf_service.read_gguf_header
    calls: list[Path] = []

    def denied_once(target: Path | str) -> GgufInfo:
        calls.append(Path(target))
        if len(calls) == 1:
            raise GgufError("ModelDesk is not allowed to read this file (permission denied).", transient=True)
        return real(target)

    monkeypatch.setattr(gguf_service, "read_gguf_header", denied_once)
    library = GgufLibrary(tmp_path / "cache.json", folders=[tmp_path / "models"])
    first = await library.scan()
    assert [p.reason for p in first.problems] == ["ModelDesk is not allowed to read this file (permission denied)."]
    second = await library.scan()  # same size and mtime, after a chmod
    assert [info.path for info in second.infos] == [path] and second.problems == ()
    assert calls == [path, path]


def test_a_stop_request_ends_the_scan_before_reading(tmp_path: Path, reads: list[tuple[Path, str]]) -> None:
    quick_model(tmp_path / "models" / "one.gguf")
    stop = threading.Event()
    stop.set()
    result = GgufLibrary(tmp_path / "cache.json", folders=[tmp_path / "models"]).scan_blocking(stop)
    assert result.infos == () and reads == []


@pytest.mark.asyncio
async def test_concurrent_scans_take_turns(tmp_path: Path, reads: list[tuple[Path, str]]) -> None:
    quick_model(tmp_path / "models" / "one.gguf")
    library = GgufLibrary(tmp_path / "cache.json", folders=[tmp_path / "models"])
    first, second = await asyncio.gather(library.scan(), library.scan())
    assert first == second and len(reads) == 1


def test_folders_can_be_added_and_removed(tmp_path: Path) -> None:
    library = GgufLibrary(tmp_path / "cache.json", folders=[tmp_path / "a", tmp_path / "a"])
    assert library.folders == (tmp_path / "a",)
    assert library.add_folder(tmp_path / "b") is True
    assert library.add_folder(tmp_path / "b" / ".." / "b") is False
    assert library.remove_folder(tmp_path / "a") is True
    assert library.remove_folder(tmp_path / "a") is False
    assert library.folders == (tmp_path / "b",)


def test_default_folders_follow_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert default_folders({"HOME": str(home)})[-4:] == [
        home / ".cache" / "llama.cpp",
        home / ".cache" / "huggingface" / "hub",
        home / ".lmstudio" / "models",
        home / ".cache" / "lm-studio" / "models",
    ]
    custom = default_folders(
        {
            "HOME": str(home),
            "LLAMA_CACHE": str(tmp_path / "llama"),
            "HF_HOME": str(tmp_path / "hf"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        }
    )
    assert custom[0] == tmp_path / "llama"
    assert tmp_path / "xdg" / "llama.cpp" in custom and tmp_path / "hf" / "hub" in custom
    hub = default_folders({"HOME": str(home), "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "hf")})
    assert tmp_path / "hub" in hub and tmp_path / "hf" / "hub" not in hub
