"""The local GGUF library: find model files, read what their headers say, remember it.

`GgufLibrary` scans folders on a worker thread (never the event loop) and caches what it read by
path, size and mtime, so a second scan opens no file that has not changed. Files split into parts
(`name-00001-of-00003.gguf`) are listed as one model. `default_folders` says where llama.cpp, the
Hugging Face hub and LM Studio keep their files.

Each header is read by `desktop_app.services.local.gguf_header`, whose public names are re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from desktop_app.domain.gguf import GgufInfo, GgufProblem, ScanResult
from desktop_app.services.local.gguf_header import (
    BIG_ENDIAN,
    BROKEN_LINK,
    DAMAGED,
    DATA_MISSING,
    DENIED,
    EMPTY,
    NOT_A_FILE,
    NOT_REGULAR,
    SPLIT_NAME,
    TOO_LARGE,
    TRUNCATED,
    VANISHED,
    WRONG_MAGIC,
    GgufError,
    read_gguf_header,
)
from desktop_app.services.paths import write_atomically

__all__ = [
    "BIG_ENDIAN",
    "BROKEN_LINK",
    "CACHE_VERSION",
    "DAMAGED",
    "DATA_MISSING",
    "DENIED",
    "EMPTY",
    "NOT_A_FILE",
    "NOT_REGULAR",
    "TOO_LARGE",
    "TRUNCATED",
    "VANISHED",
    "WRONG_MAGIC",
    "GgufError",
    "GgufLibrary",
    "default_folders",
    "read_gguf_header",
]

log = logging.getLogger(__name__)


# --- where models live ---------------------------------------------------------------------------


def default_folders(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where llama.cpp, the Hugging Face hub and LM Studio keep GGUF files on this machine.

    Folders that do not exist are included (they may appear later); a scan skips them.
    """
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())

    def env_path(name: str) -> Path | None:
        value = env.get(name, "").strip()
        return Path(value).expanduser() if value else None

    xdg_cache = env_path("XDG_CACHE_HOME") or home / ".cache"
    folders: list[Path] = []
    if llama_cache := env_path("LLAMA_CACHE"):
        folders.append(llama_cache)
    if sys.platform == "darwin":
        folders.append(home / "Library" / "Caches" / "llama.cpp")
    elif sys.platform == "win32":
        local = env_path("LOCALAPPDATA") or home / "AppData" / "Local"
        folders.append(local / "llama.cpp")
    folders.append(xdg_cache / "llama.cpp")
    hub = env_path("HF_HUB_CACHE") or env_path("HUGGINGFACE_HUB_CACHE")
    if hub is None:
        hub = (env_path("HF_HOME") or xdg_cache / "huggingface") / "hub"
    folders.append(hub)
    folders.append(home / ".lmstudio" / "models")
    folders.append(home / ".cache" / "lm-studio" / "models")
    return _unique(folders)


def _unique(folders: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    result: list[Path] = []
    for folder in folders:
        absolute = Path(os.path.abspath(Path(folder).expanduser()))
        if absolute not in seen:
            seen.add(absolute)
            result.append(absolute)
    return result


# --- the library ---------------------------------------------------------------------------------

CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class _Entry:
    size: int
    mtime_ns: int
    info: GgufInfo | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class _Found:
    path: str  # a str: a warm scan has a thousand of these and needs no Path for them
    status: os.stat_result | None  # None: a link to nothing


class GgufLibrary:
    """Every GGUF model in a set of folders, read once and remembered by path, size and mtime.

    `scan()` runs on a worker thread; scans never overlap. The cache file is JSON, replaced
    atomically, and simply ignored when it cannot be read.
    """

    def __init__(self, cache_file: Path, *, folders: Sequence[Path]) -> None:
        self._cache_file = Path(cache_file)
        self._folders = _unique(folders)
        self._lock = threading.Lock()  # one scan at a time; it owns the cache while it runs
        self._cache: dict[str, _Entry] | None = None  # loaded by the first scan, on its worker

    @property
    def folders(self) -> tuple[Path, ...]:
        return tuple(self._folders)

    def add_folder(self, folder: Path) -> bool:
        """Include `folder` in later scans; False if it already was."""
        before = len(self._folders)
        self._folders = _unique([*self._folders, folder])
        return len(self._folders) != before

    def remove_folder(self, folder: Path) -> bool:
        """Leave `folder` out of later scans; False if it was not scanned."""
        target = _unique([folder])[0]
        before = len(self._folders)
        self._folders = [f for f in self._folders if f != target]
        return len(self._folders) != before

    async def scan(self) -> ScanResult:
        """Scan every folder on a worker thread. Cancelling stops the worker at the next file."""
        stop = threading.Event()
        try:
            return await asyncio.to_thread(self.scan_blocking, stop)
        except asyncio.CancelledError:
            stop.set()
            raise

    def scan_blocking(self, stop: threading.Event | None = None) -> ScanResult:
        """The scan itself, for a worker thread (or a benchmark)."""
        with self._lock:
            if self._cache is None:
                self._cache = self._load_cache()
            cache = self._cache
            found = _find_files(self._folders)
            changed = False
            infos: list[GgufInfo] = []
            problems: list[GgufProblem] = []
            present: set[str] = set()
            for item in found:
                if stop is not None and stop.is_set():
                    break
                key = item.path
                present.add(key)
                status = item.status
                if status is None:
                    problems.append(GgufProblem(Path(key), BROKEN_LINK))
                    continue
                entry = cache.get(key)
                if entry is None or entry.size != status.st_size or entry.mtime_ns != status.st_mtime_ns:
                    entry, lasting = _read_entry(Path(key), status)
                    if lasting:
                        cache[key] = entry
                        changed = True
                    elif cache.pop(key, None) is not None:
                        changed = True
                if entry.info is not None:
                    infos.append(entry.info)
                else:
                    problems.append(GgufProblem(Path(key), entry.problem or DAMAGED))
            else:  # a complete scan: what it did not find is gone (a stopped one cannot tell)
                for gone in [key for key in cache if key not in present]:
                    del cache[gone]
                    changed = True
            if changed:
                self._save_cache(cache)
            grouped, split_problems = _group_splits(infos, {problem.path for problem in problems})
            problems.extend(split_problems)
            problems.sort(key=lambda problem: str(problem.path))
            return ScanResult(infos=tuple(grouped), problems=tuple(problems))

    # --- the cache file ----------------------------------------------------------------------

    def _load_cache(self) -> dict[str, _Entry]:
        try:
            document = json.loads(self._cache_file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("ignoring the unreadable GGUF cache %s", self._cache_file)
            return {}
        if not isinstance(document, dict) or document.get("version") != CACHE_VERSION:
            return {}
        files = document.get("files")
        if not isinstance(files, dict):
            return {}
        cache: dict[str, _Entry] = {}
        for key, record in files.items():
            try:
                cache[key] = _entry_from_json(Path(key), record)
            except (KeyError, TypeError, ValueError):
                continue  # one damaged record costs one re-read, nothing more
        return cache

    def _save_cache(self, cache: Mapping[str, _Entry]) -> None:
        document = {"version": CACHE_VERSION, "files": {key: _entry_to_json(entry) for key, entry in cache.items()}}
        try:
            write_atomically(self._cache_file, json.dumps(document, separators=(",", ":")).encode())
        except OSError:
            log.warning("could not write the GGUF cache %s", self._cache_file, exc_info=True)


def _read_entry(path: Path, status: os.stat_result) -> tuple[_Entry, bool]:
    """What the file says (or why it cannot be used), and whether that may be cached."""
    # Keyed by what was stat-ed before reading: a file still being written is read again next time.
    try:
        info = read_gguf_header(path)
    except GgufError as exc:
        return _Entry(status.st_size, status.st_mtime_ns, problem=exc.reason), not exc.transient
    except Exception:  # one odd file must never end the scan
        log.exception("reading %s failed", path)
        return _Entry(status.st_size, status.st_mtime_ns, problem=DAMAGED), True
    return _Entry(status.st_size, status.st_mtime_ns, info=info), True


def _entry_to_json(entry: _Entry) -> dict[str, Any]:
    record: dict[str, Any] = {"size": entry.size, "mtime_ns": entry.mtime_ns}
    if entry.info is None:
        record["problem"] = entry.problem
        return record
    info = entry.info
    record["info"] = {
        "size": info.size,
        "mtime": info.mtime,
        "architecture": info.architecture,
        "name": info.name,
        "quantisation": info.quantisation,
        "parameter_count": info.parameter_count,
        "context_length": info.context_length,
        "has_chat_template": info.has_chat_template,
        "split_index": info.split_index,
        "split_count": info.split_count,
    }
    return record


def _entry_from_json(path: Path, record: Any) -> _Entry:
    size, mtime_ns = record["size"], record["mtime_ns"]
    if not isinstance(size, int) or not isinstance(mtime_ns, int):
        raise TypeError("size and mtime_ns must be integers")
    if "info" not in record:
        problem = record["problem"]
        if not isinstance(problem, str):
            raise TypeError("problem must be a string")
        return _Entry(size, mtime_ns, problem=problem)
    data = record["info"]

    def typed(name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        value = data[name]
        if value is None and optional:
            return value
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise TypeError(f"{name} has the wrong type")

    info = GgufInfo(
        path=path,
        size=typed("size", int),
        mtime=float(typed("mtime", (int, float))),
        architecture=typed("architecture", str),
        name=typed("name", str),
        quantisation=typed("quantisation", str),
        parameter_count=typed("parameter_count", int, optional=True),
        context_length=typed("context_length", int, optional=True),
        has_chat_template=typed("has_chat_template", bool),
        split_index=typed("split_index", int),
        split_count=typed("split_count", int),
        parts=(path,),
    )
    return _Entry(size, mtime_ns, info=info)


# --- finding files -------------------------------------------------------------------------------


def _find_files(folders: Sequence[Path]) -> list[_Found]:
    """Every *.gguf under the folders, following links (the HF hub links snapshots to blobs).

    Hidden folders are skipped (below the roots), each folder is visited once however many links
    lead to it, and a file reached by several paths is listed once, under its first path in order.
    """
    seen_folders: set[tuple[int, int]] = set()
    found: list[_Found] = []
    stack = [str(folder) for folder in reversed(folders)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_folders:
                continue
            seen_folders.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as entries:
                listing = sorted(entries, key=lambda entry: entry.name)
        except OSError:
            continue  # missing, unreadable, or gone: nothing to list
        subfolders: list[str] = []
        for entry in listing:
            try:
                if entry.is_dir():
                    if not entry.name.startswith("."):
                        subfolders.append(entry.path)
                elif entry.name.lower().endswith(".gguf"):
                    if entry.is_file():
                        found.append(_Found(entry.path, entry.stat()))  # follows links
                    elif entry.is_symlink() and not os.path.exists(entry.path):
                        found.append(_Found(entry.path, None))
            except OSError:
                continue
        stack.extend(reversed(subfolders))
    unique: list[_Found] = []
    seen_files: set[tuple[int, int]] = set()
    for item in found:
        if item.status is not None:
            identity = (item.status.st_dev, item.status.st_ino)
            if identity in seen_files:
                continue
            seen_files.add(identity)
        unique.append(item)
    return unique


def _group_splits(infos: Sequence[GgufInfo], broken: set[Path]) -> tuple[list[GgufInfo], list[GgufProblem]]:
    """Fold `name-0000k-of-0000n.gguf` parts into one model.

    A model with a part missing is a problem; one with a part that is there but `broken` is left
    out quietly, since that part's own problem says why.
    """
    singles: list[GgufInfo] = []
    groups: dict[tuple[Path, str, int], dict[int, GgufInfo]] = {}
    for info in infos:
        match = SPLIT_NAME.match(info.path.name)
        number, count = (int(match["number"]), int(match["count"])) if match else (0, 0)
        if match is None or not 1 <= number <= count:
            singles.append(info)
            continue
        groups.setdefault((info.path.parent, match["prefix"], count), {})[number] = info
    problems: list[GgufProblem] = []
    for (folder, prefix, count), parts in groups.items():
        names = {number: f"{prefix}-{number:05d}-of-{count:05d}.gguf" for number in range(1, count + 1)}
        absent = [number for number in names if number not in parts]
        missing = [number for number in absent if folder / names[number] not in broken]
        if missing:
            listed = ", ".join(names[number] for number in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            verb = "is" if len(missing) == 1 else "are"
            problems.append(
                GgufProblem(
                    parts[min(parts)].path,
                    f"The model cannot load: {len(missing)} of its {count} parts {verb} missing ({listed}{more}).",
                )
            )
        if absent:
            continue
        ordered = [parts[number] for number in names]
        counts = [part.parameter_count for part in ordered if part.parameter_count is not None]
        singles.append(
            replace(
                ordered[0],
                size=sum(part.size for part in ordered),
                mtime=max(part.mtime for part in ordered),
                parameter_count=sum(counts) if counts else None,
                split_index=0,
                split_count=count,
                parts=tuple(part.path for part in ordered),
            )
        )
    singles.sort(key=lambda info: str(info.path))
    return singles, problems
