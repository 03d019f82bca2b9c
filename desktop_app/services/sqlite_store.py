"""What every SQLite-backed store shares: one worker thread, a versioned schema, a fresh start.

The connection is made, used and closed only on that worker thread (sqlite3's own same-thread
check stays on to prove it), so the event loop never waits on the disk and statements never
interleave. WAL with synchronous=NORMAL; a newer or unreadable file is moved aside and a new one
started; a write once asked for is never dropped by a cancelled caller. Every SQLite failure
reaches the caller as one `StorageFailed` sentence (locked, disk full, I/O error, damaged...), and
a damaged file (quick check at open, or a read that finds it damaged) is set aside like an
unreadable one, its path kept in `damaged_copy` so what is still readable can be recovered.

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

from desktop_app.domain.errors import StorageFailed
from desktop_app.services.paths import move_aside

T = TypeVar("T")

_SIDECARS = ("-wal", "-shm", "-journal")
_UNREADABLE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_CAUSES = {
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_IOERR: "io",
    sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged",
    sqlite3.SQLITE_READONLY: "readonly",
    sqlite3.SQLITE_PERM: "readonly",
}


class StoreClosed(RuntimeError):
    pass


class _NewerDatabase(Exception):
    pass


class _Damaged(Exception):
    pass


class SqliteStore:
    NAME: ClassVar[str]  # "conversation": the store's thread, errors and log lines
    DESCRIPTION: ClassVar[str]  # "conversation history": what the user is told was set aside
    SCHEMA_VERSION: ClassVar[int]
    # MIGRATIONS[n] takes a database at user_version n to n + 1.
    MIGRATIONS: ClassVar[Mapping[int, tuple[str, ...]]]

    busy_timeout_s = 5.0  # how long a statement waits for another program's lock before failing

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notice: str | None = None  # set by open() when the old file had to be set aside
        self.damaged_copy: Path | None = None  # a damaged file set aside: what recover() reads
        self.problem: StorageFailed | None = None  # why the last open() failed, until one succeeds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.NAME}-store")
        self._closed = False
        self._db: sqlite3.Connection | None = None  # touched only on the worker thread

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> str | None:
        """Open (or create) the database; returns the notice when an unreadable file was set aside.

        Raises StorageFailed when the file cannot be opened now (locked by another program...);
        `problem` keeps that sentence and open() may be called again.
        """
        try:
            self.notice = await self._write(self._open)
        except StorageFailed as exc:
            self.problem = exc
            raise
        self.problem = None
        return self.notice

    @property
    def is_open(self) -> bool:
        return self._db is not None and not self._closed

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
        return await loop.run_in_executor(self._executor, functools.partial(self._guarded, fn, *args))

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreClosed(f"the {self.NAME} store is closed")
        future = asyncio.wrap_future(self._executor.submit(self._guarded, fn, *args))
        # Once asked for, a write happens even if the caller is cancelled meanwhile: cancelling
        # would drop it from the queue and lose it without a word.
        return await asyncio.shield(future)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.problem is not None:
                raise self.problem
            raise StoreClosed(f"the {self.NAME} store is not open")
        return self._db

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the worker; an SQLite failure becomes the one sentence the user is shown."""
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            failure = self._failure(exc)
            if failure.cause == "damaged" and self._db is not None and fn != self._open:
                failure = self._set_aside_if_damaged(failure)
            raise failure from exc
        except OSError as exc:  # the folder itself: missing, not writable, full
            raise self._failure(exc) from exc

    def _failure(self, exc: BaseException) -> StorageFailed:
        """The sentence for an SQLite or OS failure (the first one in the chain that has a cause)."""
        cause = "unavailable"
        detail = str(exc)
        current: BaseException | None = exc
        while current is not None:
            code = getattr(current, "sqlite_errorcode", None)
            errno_ = getattr(current, "errno", None)
            if code is not None and code & 0xFF in _CAUSES:
                cause, detail = _CAUSES[code & 0xFF], str(current)
                break
            if errno_ == 28:  # ENOSPC
                cause, detail = "full", str(current)
                break
            current = current.__context__
        what, folder = f"The {self.DESCRIPTION} database", self.path.parent
        problem, action = {
            "locked": (
                f"{what} is locked by another program ({self.path})",
                "Close the other program (or the other ModelDesk), then Retry.",
            ),
            "full": (
                f"The disk holding the {self.DESCRIPTION} is full ({folder})",
                "Free some space there, then Retry.",
            ),
            "io": (
                f"{what} could not be read or written: the disk reported an error ({folder})",
                "Check that the disk is connected and healthy, then Retry.",
            ),
            "damaged": (
                f"{what} is damaged ({self.path})",
                "Restart ModelDesk: it sets the damaged file aside and offers to recover what can still be read.",
            ),
            "readonly": (
                f"{what} cannot be written ({self.path} is read-only)",
                "Make the file and its folder writable, then Retry.",
            ),
        }.get(cause, (f"{what} cannot be used ({detail})", "Retry; if it keeps failing, restart ModelDesk."))
        logging.getLogger(type(self).__module__).warning("%s store: %s", self.NAME, detail)
        return StorageFailed(f"{problem}.", action, cause, problem)

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
        except _Damaged as exc:
            reason = str(exc)
            return self._start_afresh(reason, damaged=True)
        return self._start_afresh(reason)

    def _start_afresh(self, reason: str, *, damaged: bool = False) -> str:
        # Logged under the store's own module, as if it had done this itself.
        logging.getLogger(type(self).__module__).warning("%s database %s is unusable: %s", self.NAME, self.path, reason)
        moved = move_aside(self.path)
        for suffix in _SIDECARS:
            # Whatever the failed connection left beside the file goes with it, so no old log or
            # journal can be replayed into the fresh database.
            sidecar = self.path.with_name(self.path.name + suffix)
            if sidecar.exists():
                sidecar.replace(moved.with_name(moved.name + suffix))
        self._db = self._connect()
        if damaged:
            self.damaged_copy = moved
        self.notice = (
            f"Your {self.DESCRIPTION} could not be read ({reason}), so it was moved to {moved} "
            f"and ModelDesk started a new one."
        )
        return self.notice

    def _set_aside_if_damaged(self, failure: StorageFailed) -> StorageFailed:
        """A statement found the file damaged: if the quick check agrees, set it aside and start afresh."""
        assert self._db is not None
        try:
            self._quick_check(self._db)
            return failure  # a passing fault: the file itself is sound
        except (_Damaged, sqlite3.DatabaseError) as exc:
            reason = str(exc) if isinstance(exc, _Damaged) else "a part of the file is damaged"
        self._close()
        notice = self._start_afresh(reason, damaged=True)
        return StorageFailed(notice, "Recover what can still be read, then Retry.", "damaged", notice.removesuffix("."))

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            logging.getLogger(type(self).__module__).warning(
                "%s database %s failed its quick check: %s", self.NAME, self.path, rows[:5]
            )
            raise _Damaged("a part of the file is damaged")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, with explicit BEGIN where several statements go together.
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
        try:
            # The version is read first: it is also what finds out the file is not a database, and
            # a newer schema must be refused before anything is written to it.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > self.SCHEMA_VERSION:
                raise _NewerDatabase(f"it was made by a newer version of ModelDesk (schema {version})")
            if version:
                # A damaged page deep in the file is found only when something reads it; new
                # writes must not go into such a file.
                try:
                    self._quick_check(conn)
                except sqlite3.DatabaseError as exc:
                    if exc.sqlite_errorcode & 0xFF not in _UNREADABLE_CODES:
                        raise
                    raise _Damaged("a part of the file is damaged") from exc
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
