"""Presets: named sets of system prompt, parameters and response format, in a JSON file of their own.

The file is read once (`load`), off the event loop, and rewritten atomically after each change. A
file that cannot be read is set aside (`<name>.corrupt-<time>`), named in the log, and the list
starts empty; a preset the file holds that this build cannot read is skipped, and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from desktop_app.domain.chat import ChatParams
from desktop_app.services.events import Listeners, Unsubscribe
from desktop_app.services.paths import move_aside, write_atomically

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
MAX_NAME_LENGTH = 80


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    params: ChatParams  # `preset` is always "": a preset does not name itself


def check_name(name: str, taken: Callable[[str], bool] = lambda _name: False) -> str:
    """The name as it is kept (trimmed); ValueError with one sentence when it cannot be one."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("A preset needs a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"A preset name can be at most {MAX_NAME_LENGTH} characters long.")
    if taken(name):
        raise ValueError(f"There is already a preset named “{name}”.")
    return name


class PresetStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._presets: dict[str, Preset] = {}  # by name
        self._changed: Listeners[[]] = Listeners("presets changed")
        self._lock = asyncio.Lock()  # one write at a time, in the order asked

    @property
    def path(self) -> Path:
        return self._path

    def on_changed(self, listener: Callable[[], None]) -> Unsubscribe:
        return self._changed.subscribe(listener)

    @property
    def presets(self) -> list[Preset]:
        """Every preset, by name (case aside)."""
        return sorted(self._presets.values(), key=lambda p: p.name.casefold())

    def find(self, name: str) -> Preset | None:
        return self._presets.get(name)

    async def load(self) -> None:
        """Read the file (none yet is an empty list)."""
        presets = await asyncio.to_thread(self._read)
        self._presets = {p.name: p for p in presets}
        self._changed.emit()

    def _read(self) -> list[Preset]:
        try:
            data = json.loads(self._path.read_bytes())
            if not isinstance(data, dict) or not isinstance(data.get("presets"), list):
                raise ValueError("not a list of presets")
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            try:
                kept = move_aside(self._path)
            except OSError as error:
                log.error("the presets file could not be read (%s) nor set aside (%s)", exc, error)
                return []
            log.error("the presets file could not be read (%s); the file is now %s", exc, kept)
            return []
        presets: list[Preset] = []
        for entry in data["presets"]:
            try:
                name = check_name(str(entry["name"]))
                params = ChatParams.model_validate(entry["params"]).model_copy(update={"preset": ""})
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                log.warning("a preset in %s was skipped: it could not be read (%s)", self._path.name, exc)
                continue
            presets.append(Preset(name, params))
        return presets

    async def save(self, name: str, params: ChatParams) -> Preset:
        """Keep `params` as preset `name` (a preset of that name is replaced). ValueError for a bad name;
        OSError if the file cannot be written (the list is then as before)."""
        preset = Preset(check_name(name), params.model_copy(update={"preset": ""}))
        await self._change(lambda presets: {**presets, preset.name: preset})
        return preset

    async def rename(self, old: str, new: str) -> Preset:
        """ValueError when `old` is gone or `new` is taken by another preset."""
        current = self._presets.get(old)
        if current is None:
            raise ValueError(f"There is no preset named “{old}” any more.")
        name = check_name(new, lambda n: n != old and n in self._presets)
        renamed = Preset(name, current.params)
        await self._change(lambda presets: {**{k: v for k, v in presets.items() if k != old}, name: renamed})
        return renamed

    async def delete(self, name: str) -> None:
        await self._change(lambda presets: {k: v for k, v in presets.items() if k != name})

    async def _change(self, update: Callable[[dict[str, Preset]], dict[str, Preset]]) -> None:
        """Apply `update` to the list, write it, then keep it (the list stays as it was if the write fails)."""
        async with self._lock:
            presets = update(self._presets)
            data = _to_json(sorted(presets.values(), key=lambda p: p.name.casefold()))
            await asyncio.to_thread(write_atomically, self._path, data)
            self._presets = presets
        self._changed.emit()


def _to_json(presets: list[Preset]) -> bytes:
    entries: list[dict[str, Any]] = [
        {"name": p.name, "params": p.params.model_dump(mode="json", exclude={"preset"})} for p in presets
    ]
    return json.dumps({"version": FORMAT_VERSION, "presets": entries}, ensure_ascii=False, indent=1).encode()
