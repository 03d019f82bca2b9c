"""What every SQLite-backed store shares: one worker thread, a versioned schema, a fresh start.

The connection is made, used and closed only on that worker thread (sqlite3's own same-thread
check stays on to prove it), so the event loop never waits on the disk and statements never
interleave. WAL with synchronous=NORMAL; a newer or unreadable file is moved aside and a new one
started; a write once asked for is never dropped by a cancelled caller.

A store subclasses `SqliteStore`, names itself (`NAME`, `DESCRIPTION`), gives its `SCHEMA_VERSION`
and `MIGRATIONS`, and may add pragmas (`_configure`) or work on the migrated database (`_ready`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from desktop_app.services.paths import move_aside

T = TypeVar("T")

_SIDECARS = ("-wal", "-shm", "-journal")
_UNREADABLE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class StoreClosed(RuntimeError):
    pass


class _NewerDatabase(Exception):
    pass


class SqliteStore:
    NAME: ClassVar[str]  # "conversation": the store's thread, errors and log lines
    DESCRIPTION: ClassVar[str]  # "conversation history": what the user is told was set aside
    SCHEMA_VERSION: ClassVar[int]
    # MIGRATIONS[n] takes a database at user_version n to n + 1.
    MIGRATIONS: ClassVar[Mapping[int, tuple[str, ...]]]

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notice: str | None = None  # set by open() when the old file had to be set aside
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.NAME}-store")
        self._closed = False
        self._db: sqlite3.Connection | None = None  # touched only on the worker thread

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> str | None:
        """Open (or create) the database; returns the notice when an unreadable file was set aside."""
        self.notice = await self._write(self._open)
        return self.notice

    async def close(self) -> None:
        """Finish the queued work, close the connection and let the worker go. Safe to repeat."""
        if self._closed:
            return
        try:
            await self._write(self._close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)

    # --- running on the worker -------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreClosed(f"the {self.NAME} store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreClosed(f"the {self.NAME} store is closed")
        future = asyncio.wrap_future(self._executor.submit(fn, *args))
        # Once asked for, a write happens even if the caller is cancelled meanwhile: cancelling
        # would drop it from the queue and lose it without a word.
        return await asyncio.shield(future)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosed(f"the {self.NAME} store is not open")
        return self._db

    # --- hooks (run on the worker) ---------------------------------------------------------------

    def _configure(self, conn: sqlite3.Connection) -> None:
        """The store's own pragmas, set before the schema is migrated."""

    def _ready(self, conn: sqlite3.Connection) -> None:
        """Whatever the store reads from the database once it is at SCHEMA_VERSION."""

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        while version < self.SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in self.MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # --- worker-side implementation --------------------------------------------------------------

    def _open(self) -> str | None:
        if self._db is not None:
            return self.notice
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._db = self._connect()
            return None
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode & 0xFF not in _UNREADABLE_CODES:
                raise  # locked, read-only, disk full...: not the file's fault, so leave it be
            reason = "the file is not a readable database"
        except _NewerDatabase as exc:
            reason = str(exc)
        # Logged under the store's own module, as if it had done this itself.
        logging.getLogger(type(self).__module__).warning(
            "%s database %s is unusable: %s", self.NAME, self.path, reason
        )
        moved = move_aside(self.path)
        for suffix in _SIDECARS:
            # Whatever the failed connection left beside the file goes with it, so no old log or
            # journal can be replayed into the fresh database.
            sidecar = self.path.with_name(self.path.name + suffix)
            if sidecar.exists():
                sidecar.replace(moved.with_name(moved.name + suffix))
        self._db = self._connect()
        return (
            f"Your {self.DESCRIPTION} could not be read ({reason}), so it was moved to {moved} "
            f"and ModelDesk started a new one."
        )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, with explicit BEGIN where several statements go together.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            # The version is read first: it is also what finds out the file is not a database, and
            # a newer schema must be refused before anything is written to it.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > self.SCHEMA_VERSION:
                raise _NewerDatabase(f"it was made by a newer version of ModelDesk (schema {version})")
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=NORMAL")
            self._configure(conn)
            self._migrate(conn, version)
            self._ready(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
