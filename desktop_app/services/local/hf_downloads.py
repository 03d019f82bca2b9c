"""Downloading GGUF models from the Hugging Face Hub: progress, cancel, resume, and the HF cache layout.

By default a file lands where `huggingface_hub` puts it, so `llama-server -hf`, `huggingface-cli`
and the GGUF library all see the same copy::

    <cache>/models--<owner>--<name>/blobs/<sha256>              the bytes
    <cache>/models--<owner>--<name>/snapshots/<commit>/<path>   a relative link to the blob
    <cache>/models--<owner>--<name>/refs/main                   the commit "main" was at

or, in a folder the user picks, as `<folder>/<file name>`. While a part downloads it is
`<blob>.incomplete` (or `<file name>.incomplete`), as huggingface_hub names it; the library lists
only `*.gguf`, so nothing half-done is ever listed. Every part is checked against the sha256 the
Hub publishes, and only when all parts are complete are they linked (or renamed) into place.

Why not `huggingface_hub.hf_hub_download`: it blocks a thread for the whole download, cannot be
cancelled, and reports progress only to a tqdm bar; this module streams with the app's
`httpx.AsyncClient` instead and reports `PullProgress` snapshots like Ollama pulls do (one
"layer" per part), through the same `PullJob`/`PullPublisher`/`PullLedger` bookkeeping. Its
`repo_folder_name` and cache location are mirrored rather than imported: `huggingface_hub.constants`
reads HF_HOME and HF_HUB_CACHE once, at import, and `huggingface_hub.file_download` brings its own
HTTP stack and tqdm (0.3 s and 19 MB). tests/unit/test_hf_downloads.py checks with huggingface_hub
itself that it finds what this module wrote.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from desktop_app.domain.errors import DomainError, ServerError
from desktop_app.domain.hub import DigestMismatch, HubError, HubFile, NotEnoughSpace, QuantFile, gb
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.errors import Transport, transport_failure
from desktop_app.services.events import Listeners, Unsubscribe
from desktop_app.services.local.gguf import GgufLibrary
from desktop_app.services.local.hf_hub import HubClient, hub_status_error
from desktop_app.services.local.ollama_pulls import PullJob, PullLedger, PullPublisher

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024  # one write (and one hop to the writer thread) per MiB
RETRY_DELAYS_S = (1.0, 5.0, 15.0)
RESERVE_BYTES = 256 * 1024 * 1024  # what a download leaves free on the disk
PUBLISH_INTERVAL_S = 0.05
INCOMPLETE = ".incomplete"
_WRITEV = hasattr(os, "writev")  # not on Windows: the pieces are joined there
_IOV_MAX = 512  # pieces per writev (POSIX guarantees 16, Linux and macOS take 1,024)


def hub_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The Hugging Face hub cache, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME, XDG)."""
    env = os.environ if environ is None else environ

    def path(name: str) -> Path | None:
        value = env.get(name, "").strip()
        return Path(value).expanduser() if value else None

    if hub := path("HF_HUB_CACHE") or path("HUGGINGFACE_HUB_CACHE"):
        return hub
    if home := path("HF_HOME"):
        return home / "hub"
    cache = path("XDG_CACHE_HOME") or Path(env.get("HOME") or Path.home()) / ".cache"
    return cache / "huggingface" / "hub"


def repo_folder_name(repo_id: str) -> str:
    """ "models--owner--name", huggingface_hub's `repo_folder_name` for a model repo."""
    return "--".join(["models", *repo_id.split("/")])


def cached_file(cache_dir: Path, repo_id: str, path: str, revision: str = "main") -> Path | None:
    """The file in the Hugging Face cache at the commit `refs/<revision>` names (as
    huggingface_hub's `try_to_load_from_cache` finds it), or None; no network."""
    repo = cache_dir / repo_folder_name(repo_id)
    try:
        commit = (repo / "refs" / revision).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    found = repo / "snapshots" / commit / path
    return found if _safe(commit) and _safe(path) and found.is_file() else None


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """One model to fetch: a repo's file (all its parts) at one commit, into the cache or `folder`."""

    repo_id: str
    quant: QuantFile
    commit: str  # the commit the file list was read at (HubRepo.sha); the download pins it
    revision: str = "main"  # the name refs/<revision> records, in the cache layout
    folder: Path | None = None  # None: the Hugging Face cache

    @property
    def key(self) -> str:
        return f"{self.repo_id}/{self.quant.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "name": self.quant.name,
            "quantisation": self.quant.quantisation,
            "parts": [[p.path, p.size, p.sha256] for p in self.quant.parts],
            "commit": self.commit,
            "revision": self.revision,
            "folder": str(self.folder) if self.folder is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DownloadRequest:
        parts = tuple(HubFile(str(p), int(s), str(h)) for p, s, h in data["parts"])
        quant = QuantFile(str(data["name"]), str(data.get("quantisation") or ""), parts)
        folder = data.get("folder")
        return cls(
            str(data["repo_id"]),
            quant,
            str(data["commit"]),
            str(data.get("revision") or "main"),
            Path(folder) if folder else None,
        )


@dataclass(frozen=True, slots=True)
class _Place:
    """Where one part is written while it downloads, and where it goes when the model is complete."""

    incomplete: Path
    blob: Path  # == final for a user folder
    final: Path  # what the library lists


def _safe(name: str) -> bool:
    """A relative path that stays inside the folder it is joined to (a mirror could send anything)."""
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not name.startswith("/") and ":" not in name and all(p not in ("", ".", "..") for p in parts)


def places(request: DownloadRequest, cache_dir: Path) -> list[_Place]:
    """Where each part of `request` goes (see the module docstring); HubError for a name that
    would land outside the cache or the folder."""
    unsafe = [part.path for part in request.quant.parts if not _safe(part.path)]
    if unsafe or not _safe(request.commit) or "/" in request.commit or not _safe(request.revision):
        raise HubError(
            f"“{request.repo_id}” names a file or commit ModelDesk will not write ({(unsafe or [request.commit])[0]!r}).",
            "Check HF_ENDPOINT: a real Hugging Face Hub never sends such names.",
        )
    found = []
    for part in request.quant.parts:
        if request.folder is not None:
            final = request.folder / Path(part.path).name
            found.append(_Place(final.with_name(final.name + INCOMPLETE), final, final))
            continue
        repo = cache_dir / repo_folder_name(request.repo_id)
        blob = repo / "blobs" / (part.sha256 or hashlib.sha256(f"{request.commit}/{part.path}".encode()).hexdigest())
        found.append(
            _Place(blob.with_name(blob.name + INCOMPLETE), blob, repo / "snapshots" / request.commit / part.path)
        )
    return found


def _places_or_none(request: DownloadRequest, cache_dir: Path) -> list[_Place]:
    try:
        return places(request, cache_dir)
    except HubError:  # nothing was written for it
        return []


class _Failure(Exception):
    def __init__(self, error: DomainError, transient: bool) -> None:
        super().__init__(error.message)
        self.error, self.transient = error, transient


class _Sink:
    """One part's .incomplete file, written and hashed on the job's own thread.

    One write is in flight while the next MiB arrives, so the network, the disk and sha256 overlap.
    The pieces httpx received go to the file as they are, with one `writev` (no copy into a
    buffer first); the file is unbuffered and opened to append.
    """

    def __init__(self, file: BinaryIO, hasher: Any, executor: ThreadPoolExecutor) -> None:
        self._file, self._hasher, self._executor = file, hasher, executor
        self._pending: asyncio.Future[None] | None = None

    def _write(self, pieces: list[bytes]) -> None:
        fd = self._file.fileno()
        for start in range(0, len(pieces), _IOV_MAX):
            group = pieces[start : start + _IOV_MAX]
            written = os.writev(fd, group) if _WRITEV else 0
            rest = memoryview(b"".join(group))[written:] if written < sum(map(len, group)) else b""
            while rest:
                rest = rest[os.write(fd, rest) :]
        for piece in pieces:
            self._hasher.update(piece)

    async def write(self, pieces: list[bytes]) -> None:
        await self.drain()
        if pieces:
            self._pending = asyncio.get_running_loop().run_in_executor(self._executor, self._write, pieces)

    async def drain(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending


def _disk_error(exc: OSError, request: DownloadRequest, where: Path) -> DomainError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return NotEnoughSpace(
            f"The disk filled up while downloading “{request.quant.name}”.",
            f"Free some space on {where}, then resume the download: what it fetched is kept.",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return HubError(f"ModelDesk may not write to {where}.", "Pick a folder you can write to.")
    return HubError(f"Writing “{request.quant.name}” failed ({exc.strerror or exc}).", "Check the disk and try again.")


class HubDownloads:
    """Every Hub download of this session: several at once, each a task this service owns.

    `start` returns the job at once; listeners get throttled `PullProgress` snapshots (model = the
    request's key). A download cut off (a dropped connection, quitting, a crash) keeps its
    .incomplete files and an entry in the ledger; `unfinished()` lists them and `start` with the
    same request resumes from the bytes on disk.
    """

    def __init__(
        self,
        hub: HubClient,
        client: httpx.AsyncClient,
        *,
        ledger_file: Path | None,
        library: GgufLibrary | None = None,
        cache_dir: Path | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        reserve_bytes: int = RESERVE_BYTES,
        publish_interval: float = PUBLISH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub, self._client, self._library = hub, client, library
        self.cache_dir = cache_dir if cache_dir is not None else hub_cache_dir()
        self._retry_delays = tuple(retry_delays)
        self._reserve = reserve_bytes
        self._interval, self._clock = publish_interval, clock
        self._ledger = PullLedger(ledger_file)
        self._listeners: Listeners[[PullProgress]] = Listeners("hub download progress")
        self._jobs: dict[str, PullJob] = {}
        self._requests: dict[str, DownloadRequest] = {}
        self._publishers: dict[str, PullPublisher] = {}
        self.fetched_bytes = 0  # bytes received over the network, every attempt (the benchmark's waste)

    # --- what the UI calls ----------------------------------------------------------------------

    def add_listener(self, listener: Callable[[PullProgress], None]) -> Unsubscribe:
        return self._listeners.subscribe(listener)

    def job(self, key: str) -> PullJob | None:
        return self._jobs.get(key)

    async def cached(self, repo_id: str, path: str) -> Path | None:
        """`repo_id`'s `path` when it is in the cache already (downloaded before, by anything)."""
        return await asyncio.to_thread(cached_file, self.cache_dir, repo_id, path)

    def jobs(self) -> list[PullJob]:
        return list(self._jobs.values())

    def request(self, key: str) -> DownloadRequest | None:
        """What the download `key` of this session fetches."""
        return self._requests.get(key)

    def start(self, request: DownloadRequest) -> PullJob:
        """Start (or resume) `request`; the running job if it is already downloading."""
        key = request.key
        current = self._jobs.get(key)
        if current is not None and not current.state.finished:
            return current
        if (old := self._publishers.pop(key, None)) is not None:
            old.close()
        job = PullJob(key, clock=self._clock)
        publisher = PullPublisher(job, self._listeners, self._interval, self._clock)
        self._jobs[key], self._publishers[key], self._requests[key] = job, publisher, request
        job.task = asyncio.get_running_loop().create_task(self._run(request, job, publisher), name=f"hub:{key}")
        publisher.changed()
        return job

    async def cancel(self, key: str, *, keep_partial: bool = False) -> PullProgress | None:
        """Stop a download; its partial files are deleted unless `keep_partial` (to resume later)."""
        job, request = self._jobs.get(key), self._requests.get(key)
        if job is None or request is None:
            return None
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)
        if not keep_partial:
            await self.discard(request)
        return job.progress()

    async def discard(self, request: DownloadRequest) -> None:
        """Delete what an unfinished download left (.incomplete files) and forget it."""
        for place in _places_or_none(request, self.cache_dir):
            await asyncio.to_thread(place.incomplete.unlink, missing_ok=True)
        await self._ledger.remove(self._hub.endpoint, request.key)

    async def unfinished(self) -> list[DownloadRequest]:
        """Downloads that stopped before they finished (this session or an earlier one)."""
        active = {key for key, job in self._jobs.items() if not job.state.finished}
        found = []
        for entry in await self._ledger.entries(self._hub.endpoint):
            try:
                request = DownloadRequest.from_json(entry["request"])
            except (KeyError, TypeError, ValueError):
                continue
            if request.key not in active:
                found.append(request)
        return found

    async def local_path(self, request: DownloadRequest) -> Path | None:
        """Where the model of `request` is on disk (its first part) once every part is in place; None before."""
        targets = _places_or_none(request, self.cache_dir)
        if not targets:
            return None
        complete = await asyncio.to_thread(lambda: all(place.final.is_file() for place in targets))
        return targets[0].final if complete else None

    async def kept_bytes(self, request: DownloadRequest) -> int:
        """The bytes an unfinished download has on disk (parts in place and .incomplete files)."""

        def count() -> int:
            kept = 0
            for place in _places_or_none(request, self.cache_dir):
                present = _present_size(place)
                kept += present if present is not None else _size_or_zero(place.incomplete)
            return kept

        return await asyncio.to_thread(count)

    async def aclose(self) -> None:
        """Cancel every download (each stays resumable)."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for publisher in self._publishers.values():
            publisher.close()
        await asyncio.get_running_loop().run_in_executor(None, self._ledger.close)

    # --- one download ---------------------------------------------------------------------------

    async def _run(self, request: DownloadRequest, job: PullJob, publisher: PullPublisher) -> None:
        await self._ledger.put(self._hub.endpoint, request.key, {"request": request.to_json()})
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-download")
        try:
            targets = places(request, self.cache_dir)
            await self._check_space(request, targets)
            delays = iter(self._retry_delays)
            attempt = 1
            while True:
                job.begin_attempt(attempt)
                publisher.changed()
                try:
                    for part, place in zip(request.quant.parts, targets, strict=True):
                        await self._fetch_part(request, part, place, job, publisher, executor)
                    break
                except _Failure as failure:
                    delay = next(delays, None) if failure.transient else None
                    if delay is None:
                        raise
                    log.info("download of %s: attempt %d cut (%s); retrying", request.key, attempt, failure.error.kind)
                    job.retry_after(delay)
                    publisher.flush()
                    await asyncio.sleep(delay)
                    attempt += 1
            try:
                await asyncio.to_thread(_put_in_place, request, targets, self.cache_dir)
            except OSError as exc:
                raise _Failure(_disk_error(exc, request, targets[0].final.parent), False) from None
            await self._list_in_library(request, targets)
        except asyncio.CancelledError:
            job.finish(PullState.CANCELLED)
            publisher.flush()
            raise
        except _Failure as failure:
            await self._after_failure(request)
            job.finish(PullState.FAILED, failure.error)
            publisher.flush()
        except DomainError as error:
            await self._after_failure(request)
            job.finish(PullState.FAILED, error)
            publisher.flush()
        except Exception as exc:  # a bug here must still end the job visibly
            log.exception("download of %s failed unexpectedly", request.key)
            job.finish(
                PullState.FAILED,
                ServerError(
                    f"Downloading “{request.quant.name}” failed unexpectedly ({type(exc).__name__}).",
                    "Try again; if it keeps happening, copy the diagnostics and report it.",
                ),
            )
            publisher.flush()
        else:
            await self._ledger.remove(self._hub.endpoint, request.key)
            job.finish(PullState.DONE)
            publisher.flush()
        finally:
            executor.shutdown(wait=False)

    async def _after_failure(self, request: DownloadRequest) -> None:
        """Keep what can be resumed; a download that kept no byte leaves nothing, not even its entry."""
        targets = _places_or_none(request, self.cache_dir)
        if not await asyncio.to_thread(_drop_empty, targets):
            await self._ledger.remove(self._hub.endpoint, request.key)

    async def _check_space(self, request: DownloadRequest, targets: list[_Place]) -> None:
        def needed_and_free() -> tuple[int, int, Path]:
            have = 0
            for place in targets:  # parts in place already, then bytes to resume from
                present = _present_size(place)
                have += present if present is not None else _size_or_zero(place.incomplete)
            folder = targets[0].incomplete.parent
            folder.mkdir(parents=True, exist_ok=True)
            return request.quant.size - have, shutil.disk_usage(folder).free, folder

        try:
            needed, free, folder = await asyncio.to_thread(needed_and_free)
        except OSError as exc:
            raise _disk_error(exc, request, targets[0].incomplete.parent) from None
        if needed + self._reserve > free:
            raise NotEnoughSpace(
                f"Not enough disk space for “{request.quant.name}”: it needs {gb(needed)} more, "
                f"and {gb(max(0, free - self._reserve))} can be used on {folder}.",
                "Free some space, or download into another folder.",
            )

    async def _fetch_part(
        self,
        request: DownloadRequest,
        part: HubFile,
        place: _Place,
        job: PullJob,
        publisher: PullPublisher,
        executor: ThreadPoolExecutor,
    ) -> None:
        loop = asyncio.get_running_loop()
        present = await asyncio.to_thread(_present_size, place)
        if present == part.size:  # fetched before (this model, or the same blob in another snapshot)
            job.fold("present", part.path, part.size, part.size)
            return
        if present is not None:
            raise _Failure(
                HubError(
                    f"A different file named “{place.final.name}” is already in {place.final.parent}.",
                    "Move it away, or download into another folder.",
                ),
                False,
            )
        file, hasher, have = await loop.run_in_executor(executor, _open_incomplete, place.incomplete, part.size)
        job.fold("downloading", part.path, have, part.size)
        publisher.changed()
        try:
            if have < part.size or part.size == 0:
                await self._stream(request, part, have, file, hasher, job, publisher, executor)
        finally:
            await loop.run_in_executor(executor, file.close)
        if part.sha256 and hasher.hexdigest() != part.sha256.lower():
            await asyncio.to_thread(place.incomplete.unlink, missing_ok=True)
            job.fold("downloading", part.path, 0, part.size)
            raise _Failure(
                DigestMismatch(
                    f"“{part.path}” arrived damaged: its SHA-256 is not the one Hugging Face publishes, so it was deleted.",
                    "Download it again.",
                ),
                False,
            )

    async def _stream(
        self,
        request: DownloadRequest,
        part: HubFile,
        have: int,
        file: BinaryIO,
        hasher: Any,
        job: PullJob,
        publisher: PullPublisher,
        executor: ThreadPoolExecutor,
    ) -> None:
        headers = await self._hub.auth_headers()
        if have:
            headers["range"] = f"bytes={have}-"
        url = self._hub.file_url(request.repo_id, part.path, request.commit)
        sink = _Sink(file, hasher, executor)
        done = have
        # Batched here rather than by aiter_raw(chunk_size): on a cut, httpx drops what its chunker
        # holds, and those bytes would be fetched again.
        batch: list[bytes] = []
        batched = 0
        try:
            async with self._client.stream("GET", url, headers=headers, follow_redirects=True) as response:
                refused = hub_status_error(response, request.repo_id, part.path, has_token="authorization" in headers)
                if refused is not None:  # as a _Failure: a DomainError cannot pass through the stream's `with`
                    raise _Failure(refused, False)
                if have and response.status_code != 206:
                    raise _Failure(HubError(f"The server would not resume “{part.path}”.", "Try again."), True)
                async for piece in response.aiter_raw():
                    self.fetched_bytes += len(piece)
                    if done + batched + len(piece) > part.size:
                        raise _Failure(
                            HubError(f"“{part.path}” is longer than Hugging Face said.", "Try again."), False
                        )
                    batch.append(piece)
                    batched += len(piece)
                    if batched >= CHUNK_BYTES or len(batch) >= _IOV_MAX:
                        chunk, batch = batch, []
                        await sink.write(chunk)
                        done, batched = done + batched, 0
                        job.fold("downloading", part.path, done, part.size)
                        publisher.changed()
            await sink.write(batch)
            done += batched
            await sink.drain()
        except OSError as exc:
            raise _Failure(_disk_error(exc, request, file_folder(file)), False) from None
        except httpx.HTTPError as exc:
            await _keep_quietly(sink, batch)
            kind = transport_failure(exc)
            transient = kind in (Transport.CUT, Transport.NOT_CONNECTED, Transport.TIMED_OUT)
            raise _Failure(self._hub.transport_error(exc), transient) from None
        except BaseException:
            await _keep_quietly(sink, batch)
            raise
        if done < part.size:
            raise _Failure(HubError(f"The download of “{part.path}” stopped early.", "Try again."), True)

    async def _list_in_library(self, request: DownloadRequest, targets: list[_Place]) -> None:
        if self._library is None:
            return
        root = request.folder if request.folder is not None else self.cache_dir
        if not any(_is_within(root, folder) for folder in self._library.folders):
            self._library.add_folder(root)
        await self._library.scan()


def file_folder(file: BinaryIO) -> Path:
    return Path(getattr(file, "name", ".")).parent


async def _keep_quietly(sink: _Sink, batch: list[bytes]) -> None:
    """Write what arrived before a failure, so it is not fetched again (a disk error is logged)."""
    try:
        await sink.write(batch)
        await sink.drain()
    except OSError:
        log.info("the last write before a failure failed too", exc_info=True)


def _is_within(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
    except ValueError:
        return False
    return True


def _open_incomplete(path: Path, size: int) -> tuple[BinaryIO, Any, int]:
    """The .incomplete file opened to append, the sha256 of what it holds, and its length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a+b", buffering=0)  # noqa: SIM115 - closed by the caller, on the same thread
    try:
        have = file.seek(0, os.SEEK_END)
        if have > size:  # not this file's bytes: start over
            file.truncate(0)
            have = 0
        hasher = hashlib.sha256()
        file.seek(0)
        while chunk := file.read(8 * CHUNK_BYTES):
            hasher.update(chunk)
        return file, hasher, have
    except BaseException:
        file.close()
        raise


def _present_size(place: _Place) -> int | None:
    """The size of the part already in place (its blob, in the cache layout); None if absent."""
    for path in (place.final, place.blob):
        try:
            return path.stat().st_size
        except OSError:
            continue
    return None


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _drop_empty(targets: list[_Place]) -> bool:
    """Delete empty .incomplete files; True if any part still has bytes to resume from."""
    kept = False
    for place in targets:
        try:
            if place.incomplete.stat().st_size == 0:
                place.incomplete.unlink()
            else:
                kept = True
        except OSError:
            continue
    return kept


def _put_in_place(request: DownloadRequest, targets: list[_Place], cache_dir: Path) -> None:
    """Every part is complete and checked: rename the blobs, link the snapshot, record the ref."""
    for place in targets:
        if place.final.exists():
            continue
        if not place.blob.exists():
            os.replace(place.incomplete, place.blob)
        if place.final == place.blob:
            continue
        place.final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(os.path.relpath(place.blob, place.final.parent), place.final)
        except OSError:  # no symlinks (Windows without developer mode): huggingface_hub moves the blob too
            os.replace(place.blob, place.final)
    if request.folder is None and request.revision != request.commit:
        ref = cache_dir / repo_folder_name(request.repo_id) / "refs" / request.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(request.commit)
