"""Ollama: what is installed and running, load/unload/delete/copy, and pulls that survive trouble.

Everything goes through the official client, `ollama.AsyncClient`, whose timeout defaults to none
at all; each client here gets explicit ones. Pulls are owned tasks (`PullJob`), several at once.
Their ndjson progress (one line per layer tick) is folded into per-layer and overall figures as
it arrives, and published to plain callbacks at most every `publish_interval` seconds per job, so
the UI does bounded work however fast the server talks (`PullJob`, `PullPublisher` and `PullLedger` live in ollama_pulls.py).

Failures: a dropped connection, a 5xx or a timeout are retried with exponential backoff (1, 2,
4, 8 s, then the pull fails and can be resumed by hand); an unknown model, an invalid name or a
full disk are not. Ollama keeps the bytes of a blob it was fetching when the connection closes, so cancel is just
closing the stream, and resume (or a retry) is the same pull again: progress continues from the
bytes already on disk. Unfinished pulls are remembered in a small JSON file so the app can offer
to resume them after a restart.

Messages are composed in ollama_errors.py (one sentence and what to do next), never a server's
text verbatim unless Ollama reported something that module does not recognise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pydantic

from desktop_app.domain.errors import (
    BadRequest,
    DomainError,
    MalformedResponse,
    ServerError,
    Unreachable,
)
from desktop_app.domain.ollama import (
    DiskFull,
    HostStatus,
    InstalledModel,
    ModelDetails,
    OllamaHost,
    PullProgress,
    PullState,
    RunningModel,
    UnfinishedPull,
    canonical_name,
    context_length_of,
    format_bytes,
    normalize_host_url,
    system_from_modelfile,
)
from desktop_app.domain.text import without_bidi_controls
from desktop_app.services.events import Listeners, Unsubscribe
from desktop_app.services.local.ollama_errors import auth_failed, is_transient, map_error
from desktop_app.services.local.ollama_pulls import (
    PullJob,
    PullLedger,
    PullListener,
    PullPublisher,
)

if TYPE_CHECKING:
    import ollama

# PullJob and PullLedger are imported from here (ollama_hosts.py, the Ollama pane).
__all__ = [
    "MIN_FREE_BYTES",
    "RETRY_DELAYS_S",
    "OllamaService",
    "PullJob",
    "PullLedger",
    "PullListener",
    "default_models_dir",
]

log = logging.getLogger(__name__)

DiskUsage = Callable[[str], Any]  # shutil.disk_usage's shape: .free in bytes
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)
MIN_FREE_BYTES = 1_000_000_000
YIELD_EVERY = 64  # progress lines handled before letting the event loop run other work


def _ollama():
    """The official client, imported on first use: its memory is paid only if Ollama is used."""
    import ollama

    return ollama


def _call_errors() -> tuple[type[Exception], ...]:
    """What a call to Ollama raises when it fails: each is said as a domain error by `map_error`."""
    return (_ollama().ResponseError, httpx.HTTPError, ConnectionError, OSError, pydantic.ValidationError, ValueError)


def default_models_dir() -> Path:
    """Where a local Ollama keeps its blobs: $OLLAMA_MODELS or ~/.ollama/models."""
    configured = os.environ.get("OLLAMA_MODELS", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".ollama" / "models"


def _capabilities(entry: Any) -> tuple[str, ...]:
    caps = entry.get("capabilities") if isinstance(entry, dict) else None
    return tuple(str(c) for c in caps) if isinstance(caps, list) else ()


class _Failure(Exception):
    """A classified pull failure: the domain error, whether trying again may help, Ollama's words."""

    def __init__(self, error: DomainError, transient: bool, detail: str = "") -> None:
        super().__init__(error.message)
        self.error, self.transient, self.detail = error, transient, detail


class OllamaService:
    """Over 30 methods on purpose: one per Ollama API call, plus the pulls it owns and one error mapping."""

    def __init__(
        self,
        host: OllamaHost,
        *,
        api_key: str | None = None,
        state_file: Path | None = None,
        ledger: PullLedger | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        status_timeout: float = 3.0,
        pull_read_timeout: float = 300.0,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        disk_usage: DiskUsage = shutil.disk_usage,
        models_dir: Path | None = None,
        min_free_bytes: int = MIN_FREE_BYTES,
        publish_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._headers = headers
        # Control calls: a model load can take a while on a slow disk, nothing else should.
        self._client_timeout = httpx.Timeout(timeout, connect=connect_timeout)
        # Pulls: Ollama is silent while it verifies a large blob's digest; allow for that.
        self._pull_timeout = httpx.Timeout(pull_read_timeout, connect=connect_timeout)
        self._clients: dict[str, ollama.AsyncClient] = {}
        # The reachability probe answers fast or not at all; the client has no version call.
        self._probe = httpx.AsyncClient(
            base_url=normalize_host_url(host.url), headers=headers, timeout=httpx.Timeout(status_timeout)
        )
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self._disk_usage = disk_usage
        self._models_dir = models_dir or default_models_dir()
        self._min_free = min_free_bytes
        self._publish_interval = publish_interval
        self._clock = clock
        self._jobs: dict[str, PullJob] = {}
        self._publishers: dict[str, PullPublisher] = {}
        self._listeners: Listeners[[PullProgress]] = Listeners("pull progress")
        # One ledger file for every host: several services share one `PullLedger` (owned by whoever
        # made it); without one, this service has its own on `state_file`.
        self._owns_ledger = ledger is None
        self._ledger = ledger if ledger is not None else PullLedger(state_file)
        self._closed = False

    @property
    def _client(self) -> ollama.AsyncClient:
        return self._get_client("control", self._client_timeout)

    @property
    def _pull_client(self) -> ollama.AsyncClient:
        return self._get_client("pull", self._pull_timeout)

    def _get_client(self, kind: str, timeout: httpx.Timeout) -> ollama.AsyncClient:
        client = self._clients.get(kind)
        if client is None:
            client = self._clients[kind] = _ollama().AsyncClient(
                host=self._host.url, headers=self._headers, timeout=timeout
            )
        return client

    @property
    def host(self) -> OllamaHost:
        return self._host

    # --- the server -----------------------------------------------------------------------------

    async def host_status(self) -> HostStatus:
        """Reachable and which version, or the sentence saying what is wrong and what to do."""
        url = self._host.url
        try:
            response = await self._probe.get("/api/version")
        except (httpx.HTTPError, OSError) as exc:
            return HostStatus(url, False, error=self._map(exc))
        if response.status_code in (401, 403):
            return HostStatus(url, False, error=auth_failed(self._host))
        if response.status_code >= 500:
            return HostStatus(
                url,
                False,
                error=ServerError(
                    f"Ollama at {self._host.address} answered with an error (HTTP {response.status_code}).",
                    "Try again in a moment; if it persists, check Ollama's log.",
                    status=response.status_code,
                ),
            )
        try:
            response.raise_for_status()
            version = response.json()["version"]
        except (ValueError, KeyError, TypeError, httpx.HTTPStatusError):
            return HostStatus(
                url,
                False,
                error=MalformedResponse(
                    f"{self._host.address} answered, but not as Ollama does.",
                    "Check the address: it should point at `ollama serve` (port 11434 by default).",
                ),
            )
        return HostStatus(url, True, version=without_bidi_controls(str(version)))

    async def installed(self) -> list[InstalledModel]:
        """`/api/tags`, read raw: the client's model drops `capabilities`, which says what can chat."""
        response = await self._call(self._client._request_raw("GET", "/api/tags"))
        try:
            body = response.json()
            reply = _ollama().ListResponse.model_validate(body)
        except ValueError as exc:  # pydantic's ValidationError is one too
            raise self._map(exc) from exc
        raw = {e.get("model") or e.get("name"): e for e in body.get("models") or () if isinstance(e, dict)}
        shown = without_bidi_controls
        return [
            InstalledModel(
                name=shown(m.model or ""),
                family=shown((m.details.family if m.details else None) or ""),
                parameter_size=shown((m.details.parameter_size if m.details else None) or ""),
                quantization=shown((m.details.quantization_level if m.details else None) or ""),
                size=int(m.size or 0),
                modified=m.modified_at,
                digest=m.digest or "",
                capabilities=_capabilities(raw.get(m.model)),
            )
            for m in reply.models
        ]

    async def details(self, name: str) -> ModelDetails:
        reply = await self._call(self._client.show(name), model=name)
        modelfile = reply.modelfile or ""
        # The client's ShowResponse has no `system` field; the Modelfile always carries it.
        extra = reply.model_extra or {}
        system = extra.get("system") if isinstance(extra.get("system"), str) else None
        d = reply.details
        shown = without_bidi_controls
        return ModelDetails(
            name=canonical_name(name),
            parameters=shown(reply.parameters or ""),
            template=shown(reply.template or ""),
            system=shown(system if system is not None else system_from_modelfile(modelfile)),
            context_length=context_length_of(reply.modelinfo or {}),
            capabilities=tuple(shown(str(c)) for c in reply.capabilities or ()),
            license=shown(reply.license or ""),
            modelfile=shown(modelfile),
            family=shown((d.family if d else None) or ""),
            parameter_size=shown((d.parameter_size if d else None) or ""),
            quantization=shown((d.quantization_level if d else None) or ""),
        )

    async def running(self) -> list[RunningModel]:
        reply = await self._call(self._client.ps())
        return [
            RunningModel(
                name=without_bidi_controls(m.name or m.model or ""),
                size=int(m.size or 0),
                size_vram=int(m.size_vram or 0),
                expires_at=m.expires_at,
                context_length=m.context_length,
            )
            for m in reply.models
        ]

    async def load(self, name: str) -> None:
        """Load into memory (Ollama's default keep-alive applies)."""
        await self._call(self._client.generate(model=name), model=name)

    async def unload(self, name: str) -> None:
        await self._call(self._client.generate(model=name, keep_alive=0), model=name)

    async def delete(self, name: str) -> None:
        await self._call(self._client.delete(name), model=name)

    async def copy(self, source: str, destination: str) -> None:
        if not destination.strip():
            raise BadRequest("The copy needs a name.", "Type a name such as my-model:latest.")
        await self._call(self._client.copy(source, destination.strip()), model=source)

    # --- pulls ----------------------------------------------------------------------------------

    def add_pull_listener(self, listener: PullListener) -> Unsubscribe:
        """Call `listener(snapshot)` on pull progress; returns the function that unsubscribes."""
        return self._listeners.subscribe(listener)

    def pull_job(self, name: str) -> PullJob | None:
        return self._jobs.get(canonical_name(name))

    def pull_jobs(self) -> list[PullJob]:
        return list(self._jobs.values())

    def start_pull(self, name: str) -> PullJob:
        """Start pulling `name` (or resume it: Ollama continues from the bytes it has)."""
        if self._closed:
            raise RuntimeError("the Ollama service is closed")
        key = canonical_name(name)
        if not key:
            raise BadRequest(
                "Type the name of a model to pull.", "For example llama3.2 or qwen2.5:0.5b (see ollama.com/library)."
            )
        current = self._jobs.get(key)
        if current is not None and not current.state.finished:
            return current
        if key in self._publishers:
            self._publishers.pop(key).close()
        job = PullJob(key, clock=self._clock)
        publisher = PullPublisher(job, self._listeners, self._publish_interval, self._clock)
        self._jobs[key], self._publishers[key] = job, publisher
        job.task = asyncio.get_running_loop().create_task(self._run_pull(job, publisher), name=f"ollama-pull:{key}")
        publisher.changed()
        return job

    resume_pull = start_pull

    async def cancel_pull(self, name: str) -> PullProgress | None:
        """Stop a pull (closing its stream); Ollama keeps the bytes fetched so far."""
        job = self._jobs.get(canonical_name(name))
        if job is None or job.task is None:
            return None
        if not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)
        return job.progress()

    async def forget_pull(self, name: str) -> None:
        """Drop a finished, failed or cancelled pull from the list and from the remembered ones."""
        key = canonical_name(name)
        job = self._jobs.get(key)
        if job is not None and not job.state.finished:
            raise RuntimeError(f"{key} is still being pulled")
        self._jobs.pop(key, None)
        if (publisher := self._publishers.pop(key, None)) is not None:
            publisher.close()
        await self._ledger.remove(self._host.url, key)

    async def unfinished_pulls(self) -> list[UnfinishedPull]:
        """Pulls of this host that were cancelled, failed or cut off by quitting, oldest first."""
        active = {k for k, j in self._jobs.items() if not j.state.finished}
        found = []
        for entry in await self._ledger.entries(self._host.url):
            model = entry.get("model")
            if not isinstance(model, str) or model in active:
                continue
            try:
                state = PullState(entry.get("state", "cancelled"))
            except ValueError:
                state = PullState.CANCELLED
            found.append(
                UnfinishedPull(
                    model=model,
                    host_url=self._host.url,
                    state=state,
                    completed=int(entry.get("completed") or 0),
                    total=int(entry.get("total") or 0),
                    message=str(entry.get("message") or ""),
                )
            )
        return found

    async def aclose(self) -> None:
        """Cancel every pull (each stays resumable) and close the HTTP clients."""
        self._closed = True
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for publisher in self._publishers.values():
            publisher.close()
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await self._probe.aclose()
        if self._owns_ledger:
            await asyncio.get_running_loop().run_in_executor(None, self._ledger.close)

    async def _run_pull(self, job: PullJob, publisher: PullPublisher) -> None:
        url = self._host.url
        await self._remember(job, "running")
        try:
            await self._check_free_space(job, needed=self._min_free, before=True)
            delays = iter(self._retry_delays)
            attempt = 1
            while True:
                job.begin_attempt(attempt)
                publisher.changed()
                try:
                    await self._pull_once(job, publisher)
                    break
                except _Failure as failure:
                    if not failure.transient:
                        raise
                    delay = next(delays, None)
                    if delay is None:
                        error = failure.error
                        if not (isinstance(error, Unreachable) and error.url != url):  # the registry's
                            error = replace(error, action="Resume the pull once Ollama is reachable again.")
                        raise _Failure(error, False, failure.detail) from failure
                    log.info(
                        "pull of %s: attempt %d failed (%s); retrying in %.0f s",
                        job.name,
                        attempt,
                        failure.error.kind,
                        delay,
                    )
                    job.retry_after(delay)
                    publisher.flush()
                    await self._sleep(delay)
                    attempt += 1
        except asyncio.CancelledError:
            job.finish(PullState.CANCELLED)
            publisher.flush()
            await self._remember(job, "cancelled")
            raise
        except _Failure as failure:
            if isinstance(failure.error, DiskFull):
                job.drop_unfinished_layers()  # Ollama may have rolled its partial files back
            job.finish(PullState.FAILED, failure.error, failure.detail)
            publisher.flush()
            await self._remember(job, "failed", failure.error.message)
        except Exception as exc:  # a bug here must still end the job visibly
            log.exception("pull of %s failed unexpectedly", job.name)
            job.finish(
                PullState.FAILED,
                ServerError(
                    f"Pulling {job.name} failed unexpectedly ({type(exc).__name__}).",
                    "Try again; if it keeps happening, copy the diagnostics and report it.",
                ),
            )
            publisher.flush()
            await self._remember(job, "failed", "failed unexpectedly")
        else:
            job.finish(PullState.DONE)
            publisher.flush()
            await self._ledger.remove(url, job.name)

    async def _pull_once(self, job: PullJob, publisher: PullPublisher) -> None:
        attempt = job.attempt
        stream: AsyncGenerator[ollama.ProgressResponse, None] | None = None
        try:
            # Typed an AsyncIterator by ollama; it is an async generator, so it has aclose().
            stream = cast(
                "AsyncGenerator[ollama.ProgressResponse, None]", await self._pull_client.pull(job.name, stream=True)
            )
            count = 0
            success = False
            async for part in stream:
                new_layer = job.fold(without_bidi_controls(part.status or ""), part.digest, part.completed, part.total)
                if new_layer and job.total:
                    await self._check_free_space(job, needed=job.total - job.completed)
                    await self._remember(job, "running")
                if part.status == "success":
                    success = True
                publisher.changed()
                count += 1
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            if not success:
                raise _Failure(
                    Unreachable(
                        f"Ollama at {self._host.address} ended the pull of {job.name} before it finished.",
                        "It is retried automatically; resume it if it stopped.",
                        url=self._host.url,
                    ),
                    True,
                )
        except _Failure:
            raise
        except _call_errors() as exc:
            error = self._map(exc, model=job.name, pulling=True)
            said = str(exc.error or "") if isinstance(exc, _ollama().ResponseError) else ""
            raise _Failure(error, self._transient(exc, error, attempt), said) from exc
        finally:
            if stream is not None:
                await stream.aclose()  # closes the HTTP response: that is how Ollama hears "cancel"

    async def _check_free_space(self, job: PullJob, *, needed: int, before: bool = False) -> None:
        if not self._host.is_local:
            return  # the models live on another machine's disk
        path = self._models_dir
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            free = (await asyncio.to_thread(self._disk_usage, str(path))).free
        except OSError:
            return
        if free >= needed:
            return
        if before:
            message = (
                f"Only {format_bytes(free)} is free on the disk holding Ollama's models "
                f"({self._models_dir}); pulling needs at least {format_bytes(needed)}."
            )
        else:
            message = (
                f"{job.name} needs {format_bytes(needed)} more but only {format_bytes(free)} "
                f"is free on the disk holding Ollama's models ({self._models_dir})."
            )
        raise _Failure(
            DiskFull(
                message,
                "Free some space or delete models you no longer use, then resume the pull.",
                path=str(self._models_dir),
            ),
            False,
        )

    async def _remember(self, job: PullJob, state: str, message: str = "") -> None:
        await self._ledger.put(
            self._host.url,
            job.name,
            {
                "state": state,
                "completed": job.completed,
                "total": job.total,
                "message": message,
                "updated_at": time.time(),
            },
        )

    # --- errors ---------------------------------------------------------------------------------

    async def _call(self, awaitable: Awaitable[Any], *, model: str = "") -> Any:
        try:
            return await awaitable
        except _call_errors() as exc:
            raise self._map(exc, model=model) from exc

    def _map(self, exc: BaseException, *, model: str = "", pulling: bool = False) -> DomainError:
        """One domain error for anything the client or httpx raised."""
        return map_error(self._host, exc, model=model, pulling=pulling)

    _transient = staticmethod(is_transient)
