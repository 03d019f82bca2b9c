"""The bookkeeping of Ollama pulls: one job's progress, its throttled publishing, the unfinished ones.

`PullJob` folds the ndjson progress lines of one pull into per-layer and overall figures as they
arrive; `OllamaService` owns the job's task and drives it (attempts, retries, the outcome).
`PullPublisher` hands a job's snapshots to plain callbacks at most every `interval` seconds, so the
UI does bounded work however fast the server talks. `PullLedger` is the small JSON file of pulls
that did not finish, so the app can offer to resume them after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType
from typing import Any

from desktop_app.domain.errors import DomainError
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.events import Listeners
from desktop_app.services.paths import write_atomically

log = logging.getLogger(__name__)

PullListener = Callable[[PullProgress], None]
SPEED_WINDOW_S = 5.0
SAMPLE_EVERY_S = 0.1
LEDGER_VERSION = 1


class PullJob:
    """One pull of one model: a task owned by the service, and its progress as it stands."""

    def __init__(self, name: str, *, clock: Callable[[], float]) -> None:
        self.name = name
        self.events = 0  # progress lines received, every attempt included
        self.published = 0  # snapshots handed to listeners
        self.task: asyncio.Task[None] | None = None
        self._clock = clock
        self._layers: dict[str, tuple[int, int]] = {}
        self._completed = 0
        self._total = 0
        self._transferred = 0  # bytes fetched by this job (not those already on disk)
        self._samples: deque[tuple[float, int]] = deque()
        self._status = "starting"
        self._state = PullState.RUNNING
        self._error: DomainError | None = None
        self._detail = ""
        self._attempt = 1
        self._retry_in: float | None = None
        self._finished = asyncio.Event()

    # --- reading ---------------------------------------------------------------------------------

    @property
    def state(self) -> PullState:
        return self._state

    @property
    def completed(self) -> int:
        return self._completed

    @property
    def total(self) -> int:
        return self._total

    @property
    def attempt(self) -> int:
        return self._attempt

    def progress(self) -> PullProgress:
        speed = self._speed()
        remaining = max(0, self._total - self._completed)
        eta = remaining / speed if speed > 0 and self._state is PullState.RUNNING else None
        return PullProgress(
            model=self.name,
            status=self._status,
            layers=MappingProxyType(dict(self._layers)),
            completed=self._completed,
            total=self._total,
            bytes_per_s=speed if self._state is PullState.RUNNING else 0.0,
            eta_s=eta,
            done=self._state is PullState.DONE,
            error=self._error,
            state=self._state,
            attempt=self._attempt,
            retry_in_s=self._retry_in,
            detail=self._detail,
        )

    async def wait(self) -> PullProgress:
        """The final snapshot, once the pull succeeded, failed or was cancelled."""
        await self._finished.wait()
        return self.progress()

    # --- driven by the service that runs the pull -----------------------------------------------

    def begin_attempt(self, attempt: int) -> None:
        self._attempt, self._retry_in = attempt, None
        self._state, self._status = PullState.RUNNING, "connecting"
        self._samples.clear()

    def fold(self, status: str, digest: str | None, completed: int | None, total: int | None) -> bool:
        """Take one progress line; True when it named a layer not seen before."""
        self.events += 1
        self._status = status
        if not digest:
            return False
        old = self._layers.get(digest)
        total = total or (old[1] if old else 0)
        completed = completed or 0
        if old is None:
            # Bytes a layer already has on disk (an earlier pull) were not fetched now: no speed.
            self._layers[digest] = (completed, total)
            self._completed += completed
            self._total += total
        else:
            self._layers[digest] = (completed, total)
            self._completed += completed - old[0]
            self._total += total - old[1]
            if completed > old[0]:
                self._transferred += completed - old[0]
        now = self._clock()
        if not self._samples or now - self._samples[-1][0] >= SAMPLE_EVERY_S:
            self._samples.append((now, self._transferred))
            while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
                self._samples.popleft()
        return old is None

    def retry_after(self, delay: float) -> None:
        """The attempt failed for a reason that may pass: the next one starts in `delay` seconds."""
        self._state, self._retry_in = PullState.RETRYING, delay
        self._status = f"connection lost, retrying in {delay:g} s"

    def drop_unfinished_layers(self) -> None:
        """Count no bytes of the layers not finished: Ollama may have taken them back (a full disk)."""
        for digest, (completed, total) in self._layers.items():
            if not total or completed < total:
                self._completed -= completed
                self._layers[digest] = (0, total)

    def finish(self, state: PullState, error: DomainError | None = None, detail: str = "") -> None:
        self._state, self._error, self._detail, self._retry_in = state, error, detail, None
        if state is PullState.DONE:
            self._status = "success"
            self._layers = {d: (t, t) for d, (_c, t) in self._layers.items()}
            self._completed = self._total
        elif state is PullState.CANCELLED:
            self._status = "cancelled"
        else:
            self._status = "failed"
        self._finished.set()

    def _speed(self) -> float:
        if not self._samples:
            return 0.0
        first_t, first_bytes = self._samples[0]
        now = self._clock()
        span = now - first_t
        if span <= 0.05:
            return 0.0
        return max(0.0, (self._transferred - first_bytes) / span)


class PullPublisher:
    """Hands a job's snapshots to listeners, at most one per interval; the newest one wins."""

    def __init__(
        self, job: PullJob, listeners: Listeners[[PullProgress]], interval: float, clock: Callable[[], float]
    ) -> None:
        self._job, self._listeners, self._interval, self._clock = job, listeners, interval, clock
        self._last = -1e9
        self._handle: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        if self._handle is not None:
            return  # a publish is already due: it will carry this change too
        wait = self._interval - (self._clock() - self._last)
        if wait <= 0:
            self.flush()
        else:
            self._handle = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._last = self._clock()
        snapshot = self._job.progress()
        self._job.published += 1
        self._listeners.emit(snapshot)  # a broken listener is logged; the pull and the others go on

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class PullLedger:
    """The unfinished-pulls file: {"version": 1, "pulls": {"<url> <model>": {...}}}.

    Read and written on its own worker thread, written atomically; one file for every host.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ollama-ledger")
        self._entries: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = {}
            if self._path is not None and self._path.is_file():
                try:
                    data = json.loads(self._path.read_text("utf-8"))
                    if data.get("version") == LEDGER_VERSION and isinstance(data.get("pulls"), dict):
                        self._entries = {k: v for k, v in data["pulls"].items() if isinstance(v, dict)}
                except (OSError, ValueError, AttributeError):
                    log.warning("ignoring unreadable pull ledger %s", self._path)
        return self._entries

    def _save(self) -> None:
        if self._path is None:
            return
        data = json.dumps({"version": LEDGER_VERSION, "pulls": self._load()}, indent=1).encode()
        try:
            write_atomically(self._path, data)
        except OSError:
            log.warning("could not write the pull ledger %s", self._path, exc_info=True)

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def put(self, url: str, model: str, entry: dict[str, Any]) -> None:
        def put() -> None:
            self._load()[f"{url} {model}"] = {"host": url, "model": model, **entry}
            self._save()

        await self._run(put)

    async def remove(self, url: str, model: str) -> None:
        def remove() -> None:
            if self._load().pop(f"{url} {model}", None) is not None:
                self._save()

        await self._run(remove)

    async def entries(self, url: str) -> list[dict[str, Any]]:
        return await self._run(lambda: [dict(e) for e in self._load().values() if e.get("host") == url])

    def close(self) -> None:
        self._executor.shutdown(wait=True)
