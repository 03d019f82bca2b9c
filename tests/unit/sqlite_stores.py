"""What the tests of the SQLite stores share: a store open for one test, a second connection to its
file, the files a store has to set aside, and a write whose caller gives up while it waits."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import pytest
import pytest_asyncio

from desktop_app.services.sqlite_store import SqliteStore

S = TypeVar("S", bound=SqliteStore)


def store_fixtures(store_class: type[S], file_name: str, *, name: str = "store") -> tuple[Any, Any]:
    """Two fixtures: `db_path`, the file `file_name` in the test's data folder, and one called `name`,
    a `store_class` open on that file for the test.

        db_path, store = store_fixtures(UsageStore, "usage.sqlite3")
    """

    @pytest.fixture(name="db_path")
    def path(tmp_path: Path) -> Path:
        return tmp_path / "data" / file_name

    @pytest_asyncio.fixture(name=name)
    async def opened(db_path: Path) -> AsyncIterator[S]:
        store = store_class(db_path)
        await store.open()
        yield store
        await store.close()

    return path, opened


def raw(path: Path) -> sqlite3.Connection:
    """A second, independent connection: what is on disk, not what the store believes."""
    return sqlite3.connect(path)


def journal_mode_and_version(path: Path) -> tuple[str, int]:
    with raw(path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    return mode, version


def write_garbage(path: Path) -> bytes:
    path.parent.mkdir(parents=True)
    garbage = b"these bytes are not a database " * 200
    path.write_bytes(garbage)
    return garbage


def write_newer_database(path: Path) -> bytes:
    """A database a newer ModelDesk wrote; returns its bytes."""
    path.parent.mkdir(parents=True)
    with raw(path) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    return path.read_bytes()


@contextlib.asynccontextmanager
async def open_set_aside(store_class: type[S], path: Path) -> AsyncIterator[tuple[S, str | None, Path]]:
    """Open a store on a file it has to set aside: the store, the notice open() gave, the moved file."""
    store = store_class(path)
    notice = await store.open()
    try:
        [moved] = path.parent.glob(f"{path.name}.corrupt-*")
        yield store, notice, moved
    finally:
        await store.close()


async def cancel_while_queued(store: SqliteStore, write: Coroutine[Any, Any, Any]) -> None:
    """Run `write` while the store's worker is busy, and cancel it before the worker is free."""
    release = threading.Event()
    blocker = store._executor.submit(release.wait)  # holds the worker so the write has to queue
    try:
        task = asyncio.ensure_future(write)
        await asyncio.sleep(0)  # one turn of the loop: the task hands its write to the worker
        task.cancel()
    finally:
        release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wrap_future(blocker)


# --- faults put into the real file ---------------------------------------------------------------


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's connection holding `BEGIN EXCLUSIVE` on the file until the block ends."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield other
    finally:
        other.execute("COMMIT")
        other.close()


@contextlib.contextmanager
def exclusive_mode_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program with the file open in `locking_mode=EXCLUSIVE`: nobody else may even read it."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("COMMIT")  # the lock stays until the connection closes
    try:
        yield other
    finally:
        other.close()


def damage_page_holding(path: Path, marker: bytes) -> int:
    """Overwrite the first page that holds `marker` with junk, as a bad sector would (and any other
    page holding it: the search index's copy of a message); returns the first one's number.

    The file is checkpointed first (by a second connection) so the page is read from the file itself.
    """
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    offset = data.find(marker)
    assert offset > 0, f"{marker!r} is not in {path}"
    first = offset // page_size
    while offset >= 0:
        page = offset // page_size
        data[page * page_size : (page + 1) * page_size] = b"\xde\xad\xbe\xef" * (page_size // 4)
        offset = data.find(marker, (page + 1) * page_size)
    path.write_bytes(bytes(data))
    return first + 1


@contextlib.contextmanager
def small_disk(folder: Path, size_kib: int = 512) -> Iterator[Path]:
    """A real tmpfs of `size_kib` mounted on `folder` (needs root; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_disk(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte; returns the filler file (delete it to free)."""
    filler = folder / "filler.bin"
    with filler.open("wb", buffering=0) as file, pytest.raises(OSError, match="No space left") as full:
        _write_forever(file)
    assert full.value.errno == errno.ENOSPC
    return filler


def _write_forever(file: BinaryIO) -> None:
    while True:
        file.write(b"\0" * 4096)


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past `limit` bytes of any file fail with EFBIG for this process (RLIMIT_FSIZE): the
    disk I/O error SQLite reports for a write the system refuses."""
    import resource
    import signal

    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the process is killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, previous)
