"""Settings and window state on disk: read once at start-up, written atomically off the loop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from desktop_app.domain.settings import SCHEMA_VERSION, Settings
from desktop_app.services.paths import move_aside, write_atomically

log = logging.getLogger(__name__)

# _MIGRATIONS[n] turns a schema-n dict into a schema-(n + 1) dict. Only schema 1 exists so far.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class _UnreadableSettings(Exception):
    """Why a settings file cannot be used, phrased to sit inside the user notice."""


class _JsonFile:
    """A JSON file written whole and atomically, synchronously or on its own single worker.

    The single worker keeps writes in the order they were asked for; the bytes are produced on
    the caller's thread so a value changed after `save_async` returns cannot race the write.
    """

    _thread_name = "json-file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None  # made on first async save
        self._write_lock = threading.Lock()

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            write_atomically(self.path, data, mode=0o600)

    async def _write_async(self, data: bytes) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        future = asyncio.wrap_future(self._executor.submit(self._write, data))
        # A save the caller was cancelled while awaiting still happens: losing it silently is worse.
        await asyncio.shield(future)

    async def close(self) -> None:
        """Wait for queued writes, then let the worker go. Saving synchronously still works after."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.wrap_future(executor.submit(lambda: None))
        executor.shutdown(wait=False)


class SettingsStore(_JsonFile):
    _thread_name = "settings-store"

    def load(self) -> tuple[Settings, str | None]:
        """The settings, and a one-sentence notice for the user when the file had to be set aside.

        A missing file gives the defaults. A file that cannot be used is never overwritten or
        deleted: it is renamed to `settings.json.corrupt-<timestamp>` and the defaults are used.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Settings(), None
        except OSError as exc:
            return Settings(), self._set_aside(f"it could not be opened: {exc.strerror or exc}")
        try:
            return _parse(raw), None
        except _UnreadableSettings as exc:
            return Settings(), self._set_aside(str(exc))

    def save(self, settings: Settings) -> None:
        self._write(_encode(settings.model_dump(mode="json")))

    async def save_async(self, settings: Settings) -> None:
        await self._write_async(_encode(settings.model_dump(mode="json")))

    def _set_aside(self, reason: str) -> str:
        log.warning("settings file %s is unusable: %s", self.path, reason)
        try:
            moved = move_aside(self.path)
        except OSError as exc:
            return (
                f"Your settings file could not be read ({reason}) and could not be moved aside "
                f"({exc.strerror or exc}), so ModelDesk started with default settings; the file is "
                f"still at {self.path}."
            )
        return (
            f"Your settings file could not be read ({reason}), so it was moved to {moved} and "
            f"ModelDesk started with default settings."
        )


def _parse(raw: bytes) -> Settings:
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise _UnreadableSettings("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _UnreadableSettings(f"it is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise _UnreadableSettings("it does not hold a settings object")
    version = data.get("schema_version", 1)  # files from before versioning count as schema 1
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise _UnreadableSettings(f"it was written by a newer version of ModelDesk (schema {version})")
    try:
        data = _migrate(data)
    except ValueError as exc:
        raise _UnreadableSettings(str(exc)) from None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _UnreadableSettings(_describe(exc)) from None


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a settings dict from an older schema up to SCHEMA_VERSION, one step at a time."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"its schema version {version!r} is not a number")
    while version < SCHEMA_VERSION:
        step = _MIGRATIONS.get(version)
        if step is None:
            raise ValueError(f"schema version {version} does not exist")
        data = step(dict(data))
        version += 1
    return {**data, "schema_version": version}


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    message = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    return f"{where}: {message}" + (f", and {more} more problem{'s' * (more > 1)}" if more else "")


def _encode(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


class StateStore(_JsonFile):
    """Window geometry and other throwaway state: an unreadable file just means the defaults."""

    _thread_name = "state-store"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("ignoring unreadable window state %s: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, state: Mapping[str, Any]) -> None:
        self._write(_encode(state))

    async def save_async(self, state: Mapping[str, Any]) -> None:
        await self._write_async(_encode(state))
