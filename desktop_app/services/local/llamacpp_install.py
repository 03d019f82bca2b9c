"""Installing llama-server from the official llama.cpp releases: pick, download, check, unpack, run.

The release list comes from GitHub's release API (MODELDESK_LLAMACPP_RELEASES_URL overrides it, as
HF_ENDPOINT does the Hub's). An install lands in `<data>/llama.cpp/<tag>/` with an `engine.json`
naming its binary and what `--version` said; it is unpacked into a hidden folder beside that and
renamed into place only after the binary ran, so a failure never leaves a half-install in use. The
archive downloads to `<data>/llama.cpp/downloads/<asset>.incomplete` with the Hub downloads' writer
(`hf_downloads._Sink`: hashed as it arrives, resumed with a Range request) and is checked against
the `digest` the release publishes. Older installs stay until the new one has served a model
(`served`, which `LlamaCppService` calls when a server of ours comes up).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import platform as platform_module
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from desktop_app.domain.engine import (
    BrokenEngine,
    Build,
    EngineDigestMismatch,
    EngineDiskFull,
    EngineError,
    EngineInUse,
    EngineVersion,
    Platform,
    Release,
    ReleaseAsset,
    build_number,
    parse_version,
)
from desktop_app.domain.errors import DomainError
from desktop_app.domain.hub import gb
from desktop_app.domain.llamacpp import BINARY_NAME, BinaryNotFound
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.errors import Transport, transport_failure
from desktop_app.services.events import Listeners, Unsubscribe
from desktop_app.services.local.hardware import detect_hardware
from desktop_app.services.local.hf_downloads import _IOV_MAX, CHUNK_BYTES, _keep_quietly, _open_incomplete, _Sink
from desktop_app.services.local.llamacpp_managed import find_binary
from desktop_app.services.local.ollama_pulls import PullJob, PullPublisher

log = logging.getLogger(__name__)

RELEASES_ENV = "MODELDESK_LLAMACPP_RELEASES_URL"
DEFAULT_RELEASES_URL = "https://api.github.com/repos/ggml-org/llama.cpp/releases"
MANIFEST = "engine.json"
VERSION_TIMEOUT_S = 30.0
RESERVE_BYTES = 64 * 1024 * 1024
UNPACK_FACTOR = 3  # an archive's contents take up to this many times its size
INCOMPLETE = ".incomplete"


def releases_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get(RELEASES_ENV, "").strip() or DEFAULT_RELEASES_URL).rstrip("/")


def binary_file_name() -> str:
    return BINARY_NAME + (".exe" if sys.platform == "win32" else "")


@dataclass(frozen=True, slots=True)
class InstalledEngine:
    """One llama.cpp the app installed: `<data>/llama.cpp/<tag>/` and what its engine.json says."""

    tag: str
    folder: Path
    binary: Path
    backend: str
    version: EngineVersion | None

    @property
    def number(self) -> int:
        return build_number(self.tag)


# --- reading releases --------------------------------------------------------------------------


def release_from_json(data: Mapping[str, Any]) -> Release:
    """One release object of GitHub's API (`tag_name`, `assets[]` with `name`, `size`,
    `browser_download_url`, `digest`, `content_type`)."""
    assets = []
    for item in data.get("assets") or ():
        if not isinstance(item, Mapping) or not item.get("name") or not item.get("browser_download_url"):
            continue
        digest = str(item.get("digest") or "")
        sha = digest.removeprefix("sha256:").lower() if digest.startswith("sha256:") else ""
        assets.append(
            ReleaseAsset(
                str(item["name"]),
                int(item.get("size") or 0),
                str(item["browser_download_url"]),
                sha,
                str(item.get("content_type") or ""),
            )
        )
    return Release(
        str(data.get("tag_name") or ""),
        tuple(assets),
        str(data.get("published_at") or ""),
        bool(data.get("prerelease")),
        str(data.get("tarball_url") or ""),
    )


def this_platform_base() -> tuple[str, str]:
    """(os, arch) in the builds' words."""
    os_name = {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
    machine = platform_module.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64" if machine in ("x86_64", "amd64") else machine
    return os_name, arch


async def detect_platform(environ: Mapping[str, str] | None = None) -> Platform:
    """This machine's OS, CPU and GPU vendors (from services/local/hardware.py)."""
    os_name, arch = this_platform_base()
    hardware = await detect_hardware(environ)
    vendors = []
    for gpu in hardware.gpus:
        vendor = (gpu.vendor or "vulkan").lower()
        if vendor not in vendors:
            vendors.append(vendor)
    return Platform(os_name, arch, tuple(vendors))


# --- running a binary ----------------------------------------------------------------------------


async def engine_version(binary: Path, timeout: float = VERSION_TIMEOUT_S) -> EngineVersion:
    """What `binary --version` says; BrokenEngine when it does not run or says nothing readable."""
    try:
        process = await asyncio.create_subprocess_exec(
            str(binary),
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise BrokenEngine(
            f"{binary.name} could not be started ({exc.strerror or exc}).", "Pick another build of llama.cpp."
        ) from None
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BrokenEngine(f"{binary.name} --version did not answer.", "Pick another build of llama.cpp.") from None
    except asyncio.CancelledError:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    text = output.decode("utf-8", "replace")
    version = parse_version(text)
    if process.returncode != 0 or version is None:
        last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "no output")
        raise BrokenEngine(
            f"{binary.name} --version failed ({last.strip()[:160]}).",
            "This build does not run on this machine: pick another one (e.g. the CPU build).",
        )
    return version


# --- the service --------------------------------------------------------------------------------


class _Failure(Exception):
    def __init__(self, error: DomainError, transient: bool = False) -> None:
        super().__init__(error.message)
        self.error, self.transient = error, transient


def _disk_error(exc: OSError, what: str, where: Path) -> DomainError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return EngineDiskFull(
            f"The disk filled up while {what}.",
            f"Free some space on {where}, then install again: what was downloaded is kept.",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EngineError(f"ModelDesk may not write to {where}.", "Check the data folder's permissions.")
    return EngineError(f"{what.capitalize()} failed ({exc.strerror or exc}).", "Check the disk and try again.")


class EngineInstaller:
    """Installs llama.cpp builds into `<data_dir>/llama.cpp`; one install at a time per asset.

    `start` returns a `PullJob` at once (model = the asset name); listeners get throttled
    `PullProgress` snapshots. A cut or cancelled download keeps its .incomplete file and the next
    `start` of the same asset resumes it.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        data_dir: Path,
        *,
        releases: str | None = None,
        reserve_bytes: int = RESERVE_BYTES,
        publish_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.root = data_dir / "llama.cpp"
        self.releases_url = releases if releases is not None else releases_url()
        self._reserve = reserve_bytes
        self._interval, self._clock = publish_interval, clock
        self._listeners: Listeners[[PullProgress]] = Listeners("engine install progress")
        self._jobs: dict[str, PullJob] = {}
        self._publishers: dict[str, PullPublisher] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    def add_listener(self, listener: Callable[[PullProgress], None]) -> Unsubscribe:
        return self._listeners.subscribe(listener)

    # --- releases ---------------------------------------------------------------------------------

    async def _get_json(self, url: str) -> Any:
        try:
            response = await self._client.get(url, headers={"accept": "application/vnd.github+json"})
        except httpx.HTTPError:
            raise EngineError(
                "The llama.cpp release list could not be reached.", "Check the connection and try again."
            ) from None
        if response.status_code != 200:
            limited = response.status_code in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0"
            raise EngineError(
                "GitHub refused the llama.cpp release list for now (rate limit)."
                if limited
                else f"The llama.cpp release list answered HTTP {response.status_code}.",
                "Try again later.",
            )
        try:
            return response.json()
        except ValueError:
            raise EngineError("The llama.cpp release list was not readable.", "Try again later.") from None

    async def latest(self) -> Release:
        """The latest release (GitHub's "get the latest release": not a draft, not a prerelease)."""
        data = await self._get_json(f"{self.releases_url}/latest")
        if not isinstance(data, Mapping):
            raise EngineError("The llama.cpp release list was not readable.", "Try again later.")
        return release_from_json(data)

    async def releases(self, per_page: int = 10) -> list[Release]:
        data = await self._get_json(f"{self.releases_url}?per_page={per_page}")
        return [release_from_json(item) for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []

    async def update_available(self) -> Release | None:
        """The latest release when it is newer than every install (None: up to date, or none installed)."""
        installed = self.installed()
        if not installed:
            return None
        latest = await self.latest()
        return latest if latest.number > max(engine.number for engine in installed) else None

    # --- installs ---------------------------------------------------------------------------------

    def installed(self) -> list[InstalledEngine]:
        """The installs whose engine.json names a binary that is there, newest first."""
        found = []
        try:
            folders = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return []
        for folder in folders:
            try:
                data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
                binary = folder / str(data["binary"])
                if not binary.is_file():
                    continue
                version = data.get("version") or {}
                found.append(
                    InstalledEngine(
                        str(data["tag"]),
                        folder,
                        binary,
                        str(data.get("backend") or ""),
                        EngineVersion(
                            str(version.get("version", "")),
                            str(version.get("commit", "")),
                            str(version.get("built_with", "")),
                        )
                        if version
                        else None,
                    )
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
        return sorted(found, key=lambda engine: engine.number, reverse=True)

    def current(self) -> InstalledEngine | None:
        engines = self.installed()
        return engines[0] if engines else None

    async def served(self, binary: Path) -> list[str]:
        """A server on `binary` came up: when that is the newest install, the older ones go (an
        update stays beside the old engine until it has served once); the tags removed."""
        engines = await asyncio.to_thread(self.installed)
        if len(engines) < 2 or Path(binary) != engines[0].binary:
            return []
        removed = await self.prune(keep=engines[0].tag)
        log.info("llama.cpp %s served a model: removed the older installs %s", engines[0].tag, ", ".join(removed))
        return removed

    async def prune(self, keep: str) -> list[str]:
        """Delete every install but `keep` (call it once the new one has run); the tags removed."""
        removed = []
        for engine in self.installed():
            if engine.tag != keep:
                await asyncio.to_thread(shutil.rmtree, engine.folder, ignore_errors=True)
                removed.append(engine.tag)
        return removed

    # --- one install --------------------------------------------------------------------------------

    def job(self, name: str) -> PullJob | None:
        return self._jobs.get(name)

    def start(self, build: Build, tag: str) -> PullJob:
        """Install `build` of release `tag` (resuming its download); the running job if one is."""
        name = build.asset.name
        current = self._jobs.get(name)
        if current is not None and not current.state.finished:
            return current
        if (old := self._publishers.pop(name, None)) is not None:
            old.close()
        job = PullJob(name, clock=self._clock)
        publisher = PullPublisher(job, self._listeners, self._interval, self._clock)
        self._jobs[name], self._publishers[name] = job, publisher
        job.task = asyncio.get_running_loop().create_task(self._run(build, tag, job, publisher), name=f"engine:{name}")
        publisher.changed()
        return job

    async def cancel(self, name: str, *, keep_partial: bool = True) -> PullProgress | None:
        job = self._jobs.get(name)
        if job is None:
            return None
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)
        if not keep_partial:
            await asyncio.to_thread((self.downloads / (name + INCOMPLETE)).unlink, missing_ok=True)
        return job.progress()

    async def aclose(self) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task is not None and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for publisher in self._publishers.values():
            publisher.close()

    async def _run(self, build: Build, tag: str, job: PullJob, publisher: PullPublisher) -> None:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-download")
        try:
            assets = [build.asset, *([build.runtime] if build.runtime is not None else [])]
            for asset in assets[1:]:  # the whole size from the start
                job.fold("downloading", asset.name, 0, asset.size)
            archives = [await self._download(asset, job, publisher, executor) for asset in assets]
            job.fold("unpacking", None, None, None)
            publisher.changed()
            await self._install(build, tag, archives)
        except asyncio.CancelledError:
            job.finish(PullState.CANCELLED)
            publisher.flush()
            raise
        except _Failure as failure:
            job.finish(PullState.FAILED, failure.error)
            publisher.flush()
        except DomainError as error:
            job.finish(PullState.FAILED, error)
            publisher.flush()
        except Exception as exc:  # a bug here must still end the job visibly
            log.exception("installing %s failed unexpectedly", build.asset.name)
            job.finish(
                PullState.FAILED,
                EngineError(
                    f"Installing llama.cpp failed unexpectedly ({type(exc).__name__}).",
                    "Try again; if it keeps happening, copy the diagnostics and report it.",
                ),
            )
            publisher.flush()
        else:
            job.finish(PullState.DONE)
            publisher.flush()
        finally:
            executor.shutdown(wait=False)

    async def _download(
        self, asset: ReleaseAsset, job: PullJob, publisher: PullPublisher, executor: ThreadPoolExecutor
    ) -> Path:
        part = self.downloads / (asset.name + INCOMPLETE)
        loop = asyncio.get_running_loop()

        def free_space() -> tuple[int, int]:
            self.downloads.mkdir(parents=True, exist_ok=True)
            have = part.stat().st_size if part.exists() else 0
            return have, shutil.disk_usage(self.downloads).free

        try:
            have, free = await asyncio.to_thread(free_space)
        except OSError as exc:
            raise _disk_error(exc, "preparing the install", self.root) from None
        needed = asset.size - have + UNPACK_FACTOR * asset.size
        if needed + self._reserve > free:
            raise EngineDiskFull(
                f"Not enough disk space to install llama.cpp: it needs {gb(needed)}, "
                f"and {gb(max(0, free - self._reserve))} can be used on {self.root}.",
                "Free some space, then install again.",
            )
        try:
            file, hasher, have = await loop.run_in_executor(executor, _open_incomplete, part, asset.size)
        except OSError as exc:
            raise _disk_error(exc, "preparing the install", self.root) from None
        job.fold("downloading", asset.name, have, asset.size)
        publisher.changed()
        try:
            if have < asset.size or asset.size == 0:
                await self._stream(asset, have, file, hasher, job, publisher, executor)
        finally:
            await loop.run_in_executor(executor, file.close)
        if asset.sha256 and hasher.hexdigest() != asset.sha256:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise EngineDigestMismatch(
                f"“{asset.name}” arrived damaged: its SHA-256 is not the one the release publishes, so it was deleted.",
                "Install again.",
            )
        return part

    async def _stream(
        self,
        asset: ReleaseAsset,
        have: int,
        file: BinaryIO,
        hasher: Any,
        job: PullJob,
        publisher: PullPublisher,
        executor: ThreadPoolExecutor,
    ) -> None:
        headers = {"accept": "application/octet-stream"}
        if have:
            headers["range"] = f"bytes={have}-"
        sink = _Sink(file, hasher, executor)
        done, batch, batched = have, [], 0
        try:
            async with self._client.stream("GET", asset.url, headers=headers, follow_redirects=True) as response:
                if have and response.status_code == 200:
                    raise _Failure(EngineError(f"The server would not resume “{asset.name}”.", "Install again."), True)
                if response.status_code not in (200, 206):
                    raise _Failure(
                        EngineError(
                            f"The download of “{asset.name}” was refused (HTTP {response.status_code}).",
                            "Try again later.",
                        )
                    )
                async for piece in response.aiter_raw():
                    if asset.size and done + batched + len(piece) > asset.size:
                        raise _Failure(EngineError(f"“{asset.name}” is longer than the release says.", "Try again."))
                    batch.append(piece)
                    batched += len(piece)
                    if batched >= CHUNK_BYTES or len(batch) >= _IOV_MAX:
                        chunk, batch = batch, []
                        await sink.write(chunk)
                        done, batched = done + batched, 0
                        job.fold("downloading", asset.name, done, asset.size)
                        publisher.changed()
            await sink.write(batch)
            done += batched
            batch = []
            await sink.drain()
        except OSError as exc:
            raise _Failure(_disk_error(exc, f"downloading “{asset.name}”", self.downloads)) from None
        except httpx.HTTPError as exc:
            await _keep_quietly(sink, batch)
            kind = transport_failure(exc)
            raise _Failure(
                EngineError(
                    f"The download of “{asset.name}” was cut off."
                    if kind is Transport.CUT
                    else f"The download of “{asset.name}” could not reach the server.",
                    "Install again to resume: what arrived is kept.",
                ),
                True,
            ) from None
        except BaseException:
            await _keep_quietly(sink, batch)
            raise
        job.fold("downloading", asset.name, done, asset.size)
        if asset.size and done < asset.size:
            raise _Failure(
                EngineError(f"The download of “{asset.name}” stopped early.", "Install again to resume."), True
            )

    async def _install(self, build: Build, tag: str, archives: list[Path]) -> InstalledEngine:
        """Unpack beside the target, run `--version`, then rename into place (and drop the archives)."""

        def fill(staging: Path) -> Path | None:
            binary = None
            for archive in archives:  # the build, then its runtime (the same folder on Windows)
                binary = _unpack(archive, staging) or binary
            return binary

        engine = await self.put_in_place(tag, build.backend, build.asset.name, fill)
        for archive in archives:
            await asyncio.to_thread(archive.unlink, missing_ok=True)
        return engine

    async def put_in_place(
        self, tag: str, backend: str, origin: str, fill: Callable[[Path], Path | None]
    ) -> InstalledEngine:
        """Fill a hidden folder beside `<root>/<tag>` (`fill` runs on a worker thread and returns the
        llama-server in it), run its `--version`, then rename the folder into place. Whatever fails
        leaves no folder behind; `origin` names the archive (or source) in messages."""
        if not tag or "/" in tag or "\\" in tag or tag.startswith("."):
            raise EngineError(
                f"The release tag {tag!r} is not a folder name ModelDesk will use.", "Try another release."
            )
        target = self.root / tag
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
            staging = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".{tag}-", dir=self.root))
        except OSError as exc:
            raise _disk_error(exc, "unpacking llama.cpp", self.root) from None
        try:
            try:
                binary = await asyncio.to_thread(fill, staging)
            except OSError as exc:
                raise _disk_error(exc, "unpacking llama.cpp", self.root) from None
            if binary is None:
                raise BrokenEngine(f"“{origin}” holds no {binary_file_name()}.", "Pick another build of llama.cpp.")
            version = await engine_version(binary)
            relative = binary.relative_to(staging)
            manifest = {
                "tag": tag,
                "asset": origin,
                "backend": backend,
                "binary": relative.as_posix(),
                "version": {"version": version.version, "commit": version.commit, "built_with": version.built_with},
            }
            try:
                await asyncio.to_thread(_write_and_swap, staging, target, manifest)
            except OSError as exc:
                raise _disk_error(exc, "installing llama.cpp", self.root) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, ignore_errors=True)
        return InstalledEngine(tag, target, target / relative, backend, version)

    # --- the engine in use ----------------------------------------------------------------------

    async def in_use(self, setting: str = "", path: str | None = None) -> EngineInUse | None:
        """The llama-server the app would run (`find_binary`'s order: the configured one, one on
        PATH, the newest install); None when there is none (offer Install). Its version is read by
        running it."""
        engine = self.current()
        try:
            binary = await asyncio.to_thread(find_binary, setting, path, engine.binary if engine else None)
        except BinaryNotFound:
            return None
        installed = engine is not None and binary == engine.binary
        source = "setting" if setting.strip() else "installed" if installed else "path"
        try:
            version: EngineVersion | None = await engine_version(binary)
        except BrokenEngine:
            version = None
        return EngineInUse(str(binary), source, version, engine.tag if engine is not None and installed else "")


# --- the file work (on a worker thread) ---------------------------------------------------------


def _inside(root: Path, name: str) -> Path | None:
    target = (root / name).resolve()
    return target if target == root.resolve() or root.resolve() in target.parents else None


def _unpack(archive: Path, into: Path) -> Path | None:
    """Unpack a .zip or .tar.gz (members that would land outside `into` are refused); the
    llama-server inside it, made executable, or None."""
    wanted = binary_file_name()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                target = _inside(into, info.filename)
                if target is None:
                    raise OSError(errno.EINVAL, f"unsafe member {info.filename!r}")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK_BYTES)
                mode = info.external_attr >> 16
                if mode & 0o111:
                    target.chmod(0o755)
    else:
        try:
            with tarfile.open(archive, "r:*") as bundle:
                for member in bundle.getmembers():
                    if (
                        _inside(into, member.name) is None
                        or member.islnk()
                        or (member.issym() and (_inside(into, str(Path(member.name).parent / member.linkname)) is None))
                    ):
                        raise OSError(errno.EINVAL, f"unsafe member {member.name!r}")
                if hasattr(tarfile, "tar_filter"):  # Python 3.11.4 and later
                    bundle.extractall(into, filter="tar")
                else:
                    bundle.extractall(into)
        except tarfile.TarError:
            return None
    for candidate in sorted(into.rglob(wanted), key=lambda p: len(p.parts)):
        if candidate.is_file():
            candidate.chmod(candidate.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return candidate
    return None


def _write_and_swap(staging: Path, target: Path, manifest: dict[str, Any]) -> None:
    """Write engine.json, then rename the staging folder to `target` (a same-tag install moves aside first)."""
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, aside)
    try:
        os.replace(staging, target)
    except OSError:
        if aside is not None:
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
