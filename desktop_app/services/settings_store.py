"""Settings and window state on disk: read once at start-up, written atomically off the loop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from desktop_app.domain.accounts import Account
from desktop_app.domain.http_fields import check_header, is_credential_header
from desktop_app.domain.pools import Pool
from desktop_app.domain.routes import Route
from desktop_app.domain.settings import SCHEMA_VERSION, Settings
from desktop_app.domain.telemetry import TelemetrySettings
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
    """settings.json. An account, pool or route this version cannot read (a provider from a newer version,
    say) is skipped, not the whole file: it is written back untouched on every save, as are
    top-level keys this version does not know."""

    _thread_name = "settings-store"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._kept: _Kept = _Kept()
        # Credential headers found in an account's extra_headers (written before they went to the
        # keyring): {account id: {name: value}}, for the caller to move into the keyring.
        self.found_header_secrets: dict[str, dict[str, str]] = {}

    def load(self) -> tuple[Settings, str | None]:
        """The settings, and a notice for the user when entries were skipped or the file set aside.

        A missing file gives the defaults. A file that cannot be used at all is never overwritten
        or deleted: it is renamed to `settings.json.corrupt-<timestamp>` and the defaults are used.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Settings(), None
        except OSError as exc:
            return Settings(), self._set_aside(f"it could not be opened: {exc.strerror or exc}")
        try:
            settings, self._kept, self.found_header_secrets = _parse(raw)
        except _UnreadableSettings as exc:
            return Settings(), self._set_aside(str(exc))
        return settings, " ".join(self._kept.notices) or None

    def save(self, settings: Settings) -> None:
        self._write(_encode(self._kept.merged(settings.model_dump(mode="json"))))

    async def save_async(self, settings: Settings) -> None:
        await self._write_async(_encode(self._kept.merged(settings.model_dump(mode="json"))))

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


@dataclass
class _Kept:
    """What was read but not understood, to be written back as it was."""

    entries: dict[str, list[Any]] = field(default_factory=lambda: {"accounts": [], "pools": [], "routes": []})
    unknown_keys: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def merged(self, data: dict[str, Any]) -> dict[str, Any]:
        out = {**self.unknown_keys, **data}
        for name, kept in self.entries.items():
            if kept:
                out[name] = [*out.get(name, []), *kept]
        return out


_ENTRY_MODELS: dict[str, tuple[type[Account] | type[Pool] | type[Route], str]] = {
    "accounts": (Account, "Account"),
    "pools": (Pool, "Pool"),
    "routes": (Route, "Route"),
}


def _split_entries(data: dict[str, Any]) -> tuple[dict[str, Any], _Kept, dict[str, dict[str, str]]]:
    """Set aside each account or pool that does not validate, saying which one and why; also move
    credential headers out of accounts' extra_headers (see `_take_header_secrets`)."""
    kept = _Kept(unknown_keys={k: v for k, v in data.items() if k not in Settings.model_fields})
    data = {k: v for k, v in data.items() if k in Settings.model_fields}
    found: dict[str, dict[str, str]] = {}
    for name, (model, noun) in _ENTRY_MODELS.items():
        entries = data.get(name)
        if not isinstance(entries, list):
            continue  # the whole-file check says what is wrong with it
        good = []
        for number, entry in enumerate(entries, start=1):
            converted, secrets = _take_header_secrets(entry) if model is Account else (entry, {})
            try:
                try:
                    model.model_validate(converted)
                except ValidationError as exc:
                    converted, dropped = _without_unsendable_headers(converted, exc)
                    if not dropped:
                        raise
                    model.model_validate(converted)
                    kept.notices.append(
                        f"Account “{converted['label']}” was loaded without {dropped}; "
                        f"type {'them' if ';' in dropped else 'it'} again if needed."
                    )
            except ValidationError as exc:
                kept.entries[name].append(entry)  # as it was, credential headers and all
                label = entry.get("label") if isinstance(entry, dict) else None
                which = f"{noun} “{label}”" if isinstance(label, str) and label.strip() else f"{noun} number {number}"
                kept.notices.append(
                    f"{which} in your settings file was not loaded ({_describe(exc)}); it is kept "
                    f"in the file unchanged."
                )
            else:
                good.append(converted)
                if secrets:
                    found[converted["id"]] = secrets
        data[name] = good
    telemetry = data.get("telemetry")
    if telemetry is not None:
        try:
            TelemetrySettings.model_validate(telemetry)
        except ValidationError as exc:  # export stays off until set again; the rest loads
            del data["telemetry"]
            kept.notices.append(
                f"The telemetry export settings were not loaded ({_describe(exc)}); export is off until "
                f"you set it again in Settings > Telemetry export."
            )
    return data, kept, found


def _without_unsendable_headers(entry: Any, error: ValidationError) -> tuple[Any, str]:
    """An account whose only fault is extra headers that Save refuses now (framing headers,
    non-ASCII values): the entry without them, and them described for the notice ("" if none)."""
    headers = entry.get("extra_headers") if isinstance(entry, dict) else None
    if not isinstance(headers, dict) or any(e["loc"][:1] != ("extra_headers",) for e in error.errors()):
        return entry, ""
    good, bad = {}, []
    for name, value in headers.items():
        try:
            check_header(str(name), str(value))
        except ValueError as exc:
            bad.append(f"its header “{name}: {value}” ({exc})")
        else:
            good[name] = value
    return {**entry, "extra_headers": good}, "; ".join(bad)


def _take_header_secrets(entry: Any) -> tuple[Any, dict[str, str]]:
    """An account entry from before credential headers went to the keyring: those headers taken out
    of extra_headers (their names go to secret_headers), and their values."""
    headers = entry.get("extra_headers") if isinstance(entry, dict) else None
    if not (isinstance(headers, dict) and isinstance(entry.get("id"), str)):
        return entry, {}
    secrets = {
        n: v for n, v in headers.items() if isinstance(n, str) and isinstance(v, str) and is_credential_header(n)
    }
    if not secrets:
        return entry, {}
    names = [n for n in entry.get("secret_headers") or [] if isinstance(n, str)]
    return {
        **entry,
        "extra_headers": {n: v for n, v in headers.items() if n not in secrets},
        "secret_headers": [*names, *(n for n in secrets if n not in names)],
    }, secrets


def _parse(raw: bytes) -> tuple[Settings, _Kept, dict[str, dict[str, str]]]:
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
    data, kept, found = _split_entries(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _UnreadableSettings(_describe(exc)) from None
    return settings, kept, found


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
