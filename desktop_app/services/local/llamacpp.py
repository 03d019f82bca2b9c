"""llama.cpp's llama-server: look at running servers, drive router mode, and run servers of our own.

`LlamaCppService` talks HTTP to any llama-server (one model, or a router over a folder of GGUFs).
`ManagedServer` runs one llama-server process as a child of ModelDesk: an asyncio subprocess whose
output goes into a bounded log, watched so that an exit nobody asked for is reported as a crash.
Only the PID it started is ever signalled. Listeners are plain callables called on the loop; the
UI adapts them to Qt signals.

While a managed server starts, restarts or switches models its port is closed or answers 503, so
the service tells callers (the chat's dispatcher) which URL is restarting and lets them wait for it.

A router loads any model a request names (`GET /props?model=X` too): status requests name only a
model its list shows loaded and not being unloaded from here, with `autoload=false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from desktop_app.domain.errors import (
    BadRequest,
    DomainError,
    ModelNotFound,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.domain.llamacpp import (
    BINARY_NAME,
    BINARY_NOT_FOUND,
    BinaryNotFound,
    ManagedServerSpec,
    ManagedState,
    ManagedStatus,
    RouterModel,
    RouterModelStatus,
    ServerInfo,
    ServerStartFailed,
    describe_exit,
    why_it_stopped,
)
from desktop_app.domain.text import without_bidi_controls
from desktop_app.domain.urls import same_server, server_root
from desktop_app.services.errors import TransportWording, error_reply, transport_error
from desktop_app.services.events import Listeners, Unsubscribe

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.1
LOAD_TIMEOUT_S = 180.0
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
LOG_LINES = 2000
TAIL_LINES = 20
_REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


normalise_url = server_root  # the name the llama.cpp pane knows it by


def _host(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2] or url


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_binary(setting: str = "", path: str | None = None) -> Path:
    """The llama-server to run: the configured one, else `llama-server` on PATH (`path`, default $PATH)."""
    setting = setting.strip()
    if setting:
        candidate = Path(setting).expanduser()
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        if os.sep not in setting:  # a bare name, e.g. "llama-server-cuda": look it up on PATH
            found = shutil.which(setting, path=path)
            if found:
                return Path(found)
        raise BinaryNotFound(BINARY_NOT_FOUND)
    found = shutil.which(BINARY_NAME, path=path)
    if found:
        return Path(found)
    raise BinaryNotFound(BINARY_NOT_FOUND)


def _unreachable(url: str) -> Unreachable:
    return Unreachable(
        f"Could not connect to llama-server at {_host(url)}.",
        "Check that it is running and that the address and port are right.",
        url=url,
    )


def _error_text(response: httpx.Response) -> str:
    return error_reply(response)[1]


def _parse_router_model(entry: dict[str, Any]) -> RouterModel:
    status = entry.get("status") or {}
    try:
        value = RouterModelStatus(status.get("value", "unloaded"))
    except ValueError:
        value = RouterModelStatus.UNLOADED
    path = entry.get("path") or ""
    if not path:
        # The entry names its file only in the arguments the router would start it with.
        args = status.get("args") or []
        for flag in ("--model", "-m"):
            if flag in args and args.index(flag) + 1 < len(args):
                path = args[args.index(flag) + 1]
                break
    exit_code = status.get("exit_code")
    return RouterModel(
        id=str(entry.get("id", "")),
        path=str(path),
        status=value,
        failed=bool(status.get("failed")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
    )


def _is_router_listing(body: Any) -> bool:
    """A router's GET /models entries carry a `status`; a one-model server's (same route) do not."""
    data = body.get("data") if isinstance(body, dict) else None
    return isinstance(data, list) and any(isinstance(e, dict) and isinstance(e.get("status"), dict) for e in data)


class LlamaCppService:
    """HTTP to llama-server; one shared `httpx.AsyncClient`, owned (and closed) by the app."""

    def __init__(self, http: httpx.AsyncClient, *, poll_interval: float = POLL_INTERVAL_S) -> None:
        self._http = http
        self._poll = poll_interval
        self._servers: weakref.WeakSet[ManagedServer] = weakref.WeakSet()  # the ones `managed()` made
        # Per router URL, the models asked to unload here, until its list shows them unloaded.
        self._unloading: dict[str, set[str]] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    def managed(self, spec: ManagedServerSpec, *, binary_setting: str = "") -> ManagedServer:
        """A server of our own for `spec` (not started yet)."""
        server = ManagedServer(spec, service=self, binary_setting=binary_setting)
        self._servers.add(server)
        return server

    # --- servers of our own that restart ---------------------------------------------------------

    def _servers_at(self, url: str) -> list[ManagedServer]:
        return [server for server in self._servers if server.url and same_server(server.url, url)]

    def restarting(self, url: str) -> bool:
        """A server of ours at `url` (an account's base URL will do) is starting, restarting or switching."""
        return any(server.restarting for server in self._servers_at(url))

    def restarts(self, url: str) -> int:
        """How many starts, restarts and switches servers of ours at `url` have begun: a change between
        two looks means one came (and maybe went) in between."""
        return sum(server.transitions for server in self._servers_at(url))

    async def wait_ready(self, url: str, timeout: float) -> bool:
        """Wait for the restart under way at `url`; True when it left the server running, False when
        it failed, took longer than `timeout`, or no restart was under way."""
        server = next((s for s in self._servers_at(url) if s.restarting), None)
        if server is None:
            return False
        try:
            return await asyncio.wait_for(server.wait_settled(), timeout)
        except TimeoutError:
            return False

    # --- requests ------------------------------------------------------------------------------

    async def _get(self, url: str, path: str, **params: str) -> httpx.Response:
        return await self._send(url, self._http.get(f"{url}{path}", params=params or None, timeout=_REQUEST_TIMEOUT))

    async def _post(self, url: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self._send(url, self._http.post(f"{url}{path}", json=body, timeout=_REQUEST_TIMEOUT))

    @staticmethod
    async def _send(url: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        """Await `request`; every httpx failure becomes TimedOut or Unreachable."""
        try:
            return await request
        except httpx.HTTPError as exc:
            unreachable = _unreachable(url)
            said = (unreachable.message, unreachable.action)
            error = transport_error(
                exc,
                TransportWording(
                    timed_out=(f"llama-server at {_host(url)} did not answer in time.", "It may be busy; try again."),
                    not_connected=said,
                    other=said,
                ),
                url=url,
            )
            raise (error or unreachable) from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    # --- inspecting ----------------------------------------------------------------------------

    async def inspect(self, url: str) -> ServerInfo:
        """Health, model, context and slots of the server at `url`; raises `Unreachable` and co."""
        url = normalise_url(url)
        health = await self._get(url, "/health")
        if health.status_code == 503:
            return ServerInfo(url=url, loading=True)
        if health.status_code != 200:
            raise ServerError(
                f"llama-server at {_host(url)} answered /health with HTTP {health.status_code}.",
                "Check that this address is a llama-server.",
                status=health.status_code,
            )
        props_r, models_r = await asyncio.gather(self._get(url, "/props"), self._get(url, "/models"))
        props = self._json(props_r) or {}
        listing = self._json(models_r)
        build = without_bidi_controls(str(props.get("build_info") or ""))
        if props.get("role") == "router" or _is_router_listing(listing):
            return await self._inspect_router(url, listing, build)

        if listing is None:  # builds without the /models alias
            listing = self._json(await self._get(url, "/v1/models"))
        data = (listing or {}).get("data") or [{}]
        first = data[0] if isinstance(data[0], dict) else {}
        meta = first.get("meta") or {}
        settings = props.get("default_generation_settings") or {}
        n_ctx = meta.get("n_ctx") or settings.get("n_ctx")
        total, busy = await self._slots(url, props)
        return ServerInfo(
            url=url,
            healthy=True,
            model_alias=str(first.get("id") or props.get("model_alias") or ""),
            model_path=str(props.get("model_path") or ""),
            n_ctx=int(n_ctx) if n_ctx else None,
            total_slots=total,
            busy_slots=busy,
            build=build,
        )

    async def _slots(self, url: str, props: dict[str, Any], **params: str) -> tuple[int | None, int | None]:
        total = props.get("total_slots")
        slots = self._json(await self._get(url, "/slots", **params))  # 501 when started with --no-slots
        if isinstance(slots, list):
            return len(slots), sum(1 for slot in slots if slot.get("is_processing"))
        return (int(total) if total else None), None

    async def _inspect_router(self, url: str, listing: Any, build: str) -> ServerInfo:
        if not _is_router_listing(listing):
            listing = {"data": []}
        models = self._note_listing(url, [_parse_router_model(e) for e in listing["data"] if isinstance(e, dict)])
        loaded = [m for m in models if m.status is RouterModelStatus.LOADED]
        info = ServerInfo(
            url=url,
            healthy=True,
            router_mode=True,
            build=build,
            models=tuple(models),
            model_alias=", ".join(m.id for m in loaded),
        )
        if len(loaded) != 1 or self.unloading(url, loaded[0].id):
            return info
        # One model loaded: its own figures, through the router (GET routes by ?model=).
        ask = {"model": loaded[0].id, "autoload": "false"}
        props = self._json(await self._get(url, "/props", **ask)) or {}
        if self.unloading(url, loaded[0].id):  # an unload began while /props was asked
            return info
        total, busy = await self._slots(url, props, **ask)
        n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
        return replace(
            info,
            model_path=str(props.get("model_path") or loaded[0].path),
            n_ctx=int(n_ctx) if n_ctx else None,
            total_slots=total,
            busy_slots=busy,
        )

    async def wait_healthy(
        self, url: str, timeout: float = START_TIMEOUT_S, alive: Callable[[], bool] | None = None
    ) -> None:
        """Return once /health says 200; `TimedOut` after `timeout`; stop early when `alive()` is False."""
        url = normalise_url(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if alive is not None and not alive():
                return
            with contextlib.suppress(httpx.HTTPError):
                response = await self._http.get(f"{url}/health", timeout=httpx.Timeout(2.0))
                if response.status_code == 200:
                    return
            if loop.time() >= deadline:
                raise TimedOut(
                    f"llama-server at {_host(url)} was not ready after {timeout:.0f} s.",
                    "Check its log; a large model may need longer to load.",
                )
            await asyncio.sleep(self._poll)

    # --- router mode ---------------------------------------------------------------------------

    def unloading(self, url: str, model: str) -> bool:
        """This service asked the router at `url` to unload `model`, and its list still shows it active."""
        return model in self._unloading.get(normalise_url(url), ())

    def _note_listing(self, url: str, models: list[RouterModel]) -> list[RouterModel]:
        """The router's own list is the state: a model it shows unloaded is no longer unloading."""
        pending = self._unloading.get(url)
        if pending:
            pending.difference_update(m.id for m in models if not m.active)
            pending.intersection_update(m.id for m in models)
        return models

    async def router_models(self, url: str) -> list[RouterModel]:
        url = normalise_url(url)
        response = await self._get(url, "/models")
        body = self._json(response)
        if body is None:
            raise ServerError(
                f"llama-server at {_host(url)} did not list its models (HTTP {response.status_code}).",
                status=response.status_code,
            )
        if not _is_router_listing(body):
            if not body.get("data"):
                return []
            raise BadRequest(
                f"llama-server at {_host(url)} serves one model, not a router over a folder.",
                "Start it without -m, with --models-dir, to load and unload models.",
            )
        return self._note_listing(url, [_parse_router_model(e) for e in body["data"] if isinstance(e, dict)])

    async def load(self, url: str, model: str) -> None:
        """Ask the router to load `model`; returns at once (see `wait_model`). Loaded already is fine."""
        url = normalise_url(url)
        self._unloading.get(url, set()).discard(model)
        response = await self._post(url, "/models/load", {"model": model})
        if response.status_code == 200:
            return
        text = _error_text(response)
        if response.status_code == 400 and "already" in text:
            return
        raise self._model_error(url, model, response.status_code, text, "load")

    async def unload(self, url: str, model: str) -> None:
        """Ask the router to unload `model`; returns at once. Not running is fine."""
        url = normalise_url(url)
        pending = self._unloading.setdefault(url, set())
        pending.add(model)  # from now on no status request names it
        try:
            response = await self._post(url, "/models/unload", {"model": model})
        except DomainError:
            pending.discard(model)
            raise
        if response.status_code == 200:
            return
        pending.discard(model)
        text = _error_text(response)
        if response.status_code == 400 and "not running" in text:
            return
        raise self._model_error(url, model, response.status_code, text, "unload")

    @staticmethod
    def _model_error(url: str, model: str, status: int, text: str, verb: str) -> DomainError:
        if status == 404 or "not found" in text:
            return ModelNotFound(
                f"llama-server at {_host(url)} has no model {model}.",
                "Refresh the list; the router only sees the files in its folder.",
            )
        return ServerError(
            f"llama-server at {_host(url)} could not {verb} {model} (HTTP {status}: {text}).", status=status
        )

    async def wait_model(
        self, url: str, model: str, status: RouterModelStatus, timeout: float = LOAD_TIMEOUT_S
    ) -> RouterModel:
        """Poll GET /models until `model` has `status`; a failed load raises `ServerError`."""
        url = normalise_url(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen_loading = False
        while True:
            found = {m.id: m for m in await self.router_models(url)}.get(model)
            if found is None:
                raise ModelNotFound(
                    f"llama-server at {_host(url)} has no model {model}.",
                    "Refresh the list; the router only sees the files in its folder.",
                )
            if found.status is status:
                return found
            seen_loading = seen_loading or found.status is RouterModelStatus.LOADING
            if status is RouterModelStatus.LOADED and seen_loading and found.status is RouterModelStatus.UNLOADED:
                why = f" ({describe_exit(found.exit_code)})" if found.failed else ""
                raise ServerError(
                    f"{model} could not be loaded{why}.",
                    "Check the router's log; the file may be damaged or too large for memory.",
                )
            if loop.time() >= deadline:
                raise TimedOut(
                    f"{model} was not {status.value} after {timeout:.0f} s.",
                    "A large model may need longer; check the router's log.",
                )
            await asyncio.sleep(self._poll)

    async def switch(self, url: str, model: str, timeout: float = LOAD_TIMEOUT_S) -> RouterModel:
        """Unload every other model, load `model`, and return once it is loaded and the others are gone."""
        url = normalise_url(url)
        models = await self.router_models(url)
        if model not in {m.id for m in models}:
            raise ModelNotFound(
                f"llama-server at {_host(url)} has no model {model}.",
                "Refresh the list; the router only sees the files in its folder.",
            )
        others = [m.id for m in models if m.id != model and m.active]
        for other in others:
            await self.unload(url, other)
        await self.load(url, model)
        for other in others:
            await self.wait_model(url, other, RouterModelStatus.UNLOADED, timeout)
        return await self.wait_model(url, model, RouterModelStatus.LOADED, timeout)


class ManagedServer:
    """One llama-server process of our own, started from a `ManagedServerSpec`.

    State changes and log lines are announced to listeners (plain callables, called on the loop).
    """

    def __init__(
        self,
        spec: ManagedServerSpec,
        *,
        service: LlamaCppService,
        binary_setting: str = "",
        log_lines: int = LOG_LINES,
        stop_timeout: float = STOP_TIMEOUT_S,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self._spec = spec
        self._service = service
        self._binary_setting = binary_setting
        self._stop_timeout = stop_timeout
        self._start_timeout = start_timeout
        self._log: deque[str] = deque(maxlen=log_lines)
        self._state = ManagedState()
        self._state_listeners: Listeners[[ManagedState]] = Listeners("llama-server state")
        self._log_listeners: Listeners[[str]] = Listeners("llama-server log")
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._port = spec.port
        self._scratch: Path | None = None  # holds the presets file while a router runs
        self._lock = asyncio.Lock()
        self._expected_exit = False  # set by stop(): that exit is no crash
        # The start, restart or switch under way: resolves to whether it left the server running.
        self._transition: asyncio.Future[bool] | None = None
        self._transitions = 0

    # --- what it is ----------------------------------------------------------------------------

    @property
    def spec(self) -> ManagedServerSpec:
        return self._spec

    @property
    def state(self) -> ManagedState:
        return self._state

    @property
    def url(self) -> str:
        return f"http://{self._spec.host}:{self._port}" if self._port else ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def restarting(self) -> bool:
        """A start, restart or model switch is under way: the port is closed or answers 503 meanwhile."""
        return self._transition is not None and not self._transition.done()

    @property
    def transitions(self) -> int:
        """How many starts, restarts and model switches have begun so far."""
        return self._transitions

    async def wait_settled(self) -> bool:
        """Wait for the start, restart or switch under way; True when it left the server running.

        False at once when none is under way. Cancelling the wait leaves the transition alone.
        """
        transition = self._transition
        if transition is None or transition.done():
            return False
        return await asyncio.shield(transition)

    @property
    def log_lines(self) -> list[str]:
        return list(self._log)

    def log_tail(self, lines: int = TAIL_LINES) -> tuple[str, ...]:
        return tuple(list(self._log)[-lines:])

    def add_state_listener(self, listener: Callable[[ManagedState], None]) -> Unsubscribe:
        """Call `listener(state)` on every change; returns a function that removes it."""
        return self._state_listeners.subscribe(listener)

    def add_log_listener(self, listener: Callable[[str], None]) -> Unsubscribe:
        """Call `listener(line)` for every line the server prints; returns a function that removes it."""
        return self._log_listeners.subscribe(listener)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> ManagedState:
        """Start the process and return once /health answers 200 (`ServerStartFailed` if it exits)."""
        return await self._in_transition(self._start)

    async def stop(self) -> ManagedState:
        """Terminate the process (kill it after a timeout) and wait for it; no-op when not running."""
        async with self._lock:
            return await self._stop()

    async def restart(self) -> ManagedState:
        return await self._in_transition(self._restart)

    async def switch_model(self, model: Path) -> ManagedState:
        """Serve another GGUF: a restart with the new file (one-model servers have no other way)."""
        if self._spec.router:
            raise BadRequest("A router switches models itself.", "Use Switch in the router's model list.")
        return await self._in_transition(lambda: self._restart(Path(model)))

    async def aclose(self) -> None:
        await self.stop()

    async def _in_transition(self, work: Callable[[], Awaitable[ManagedState]]) -> ManagedState:
        """Run a start, restart or switch under the lock; `wait_settled` callers learn how it ended."""
        async with self._lock:
            transition: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._transition = transition
            self._transitions += 1
            try:
                return await work()
            finally:
                transition.set_result(self._state.status is ManagedStatus.RUNNING)

    async def _restart(self, model: Path | None = None) -> ManagedState:
        await self._stop()
        if model is not None:
            self._spec = replace(self._spec, model=model)
        return await self._start()

    async def _start(self) -> ManagedState:
        if self._process is not None and self._process.returncode is None:
            return self._state
        spec = self._spec
        binary = find_binary(spec.binary or self._binary_setting)
        target = spec.models_dir if spec.router else spec.model
        assert target is not None
        if not await asyncio.to_thread(target.exists):
            what = "folder" if spec.router else "model file"
            raise ModelNotFound(f"The {what} {target} does not exist.", "Pick another one.")
        if not self._port:
            self._port = free_port(spec.host)
        presets_file = await asyncio.to_thread(self._write_presets) if spec.router and spec.presets else None
        command = spec.command(binary, self._port, presets_file)
        env = dict(os.environ)
        env.update(spec.env)
        self._log.clear()
        self._append_line(f"$ {' '.join(command)}")
        self._set_state(ManagedState(ManagedStatus.STARTING, url=self.url))
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        except OSError as exc:
            await asyncio.to_thread(self._remove_scratch)
            self._set_state(ManagedState(ManagedStatus.STOPPED, url=self.url, message=str(exc)))
            raise ServerStartFailed(
                f"llama-server could not be started: {exc.strerror or exc}.",
                "Check that the configured path is a llama-server executable.",
            ) from exc
        self._process = process
        assert process.stdout is not None
        self._reader = asyncio.ensure_future(self._read(process.stdout))
        self._watcher = asyncio.ensure_future(self._watch(process))
        self._set_state(ManagedState(ManagedStatus.STARTING, url=self.url, pid=process.pid))
        try:
            await self._service.wait_healthy(self.url, self._start_timeout, alive=lambda: process.returncode is None)
        except TimedOut:
            await self._stop()
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self._stop())
            raise
        if process.returncode is not None:
            await asyncio.gather(self._watcher, return_exceptions=True)  # it records the crash
            await self._stop()
            detail = why_it_stopped(self.log_tail(200))
            raise ServerStartFailed(
                f"llama-server stopped while starting ({describe_exit(process.returncode)})"
                + (f": {detail}" if detail else "."),
                "Read its log below; the model file or an argument may be wrong.",
                exit_code=process.returncode,
            )
        self._set_state(ManagedState(ManagedStatus.RUNNING, url=self.url, pid=process.pid))
        return self._state

    async def _stop(self) -> ManagedState:
        process = self._process
        if process is None:
            return self._state
        if process.returncode is None:
            self._expected_exit = True
            with contextlib.suppress(ProcessLookupError):  # it may have exited a moment ago
                process.terminate()  # our own child, by its PID
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout)
            except TimeoutError:
                log.warning("llama-server %s ignored SIGTERM for %.0f s; killing it", process.pid, self._stop_timeout)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await self._finish_tasks()
        self._process = None
        self._watcher = self._reader = None
        self._expected_exit = False
        await asyncio.to_thread(self._remove_scratch)
        if self._state.status is not ManagedStatus.CRASHED:
            self._set_state(
                ManagedState(
                    ManagedStatus.STOPPED, url=self.url, exit_code=process.returncode, log_tail=self.log_tail()
                )
            )
        return self._state

    async def _finish_tasks(self) -> None:
        if self._watcher is not None:
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._reader is not None:
            # EOF comes when the last holder of the pipe exits; a router's orphaned model
            # instances could hold it a little longer, and the log is not worth waiting for.
            done, _ = await asyncio.wait({self._reader}, timeout=5.0)
            if not done:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self._expected_exit or process is not self._process:
            return
        if self._reader is not None:  # the last lines usually say why
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        # The log tail travels with the state; the sentence itself stays short (after a kill the
        # last line is just whatever the server happened to print before).
        self._set_state(
            ManagedState(
                ManagedStatus.CRASHED,
                url=self.url,
                pid=process.pid,
                exit_code=code,
                log_tail=self.log_tail(),
                message=f"llama-server stopped unexpectedly ({describe_exit(code)}).",
            )
        )

    async def _read(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._append_line(line.rstrip(b"\r").decode("utf-8", "replace"))
        if pending:
            self._append_line(pending.decode("utf-8", "replace"))

    def _append_line(self, line: str) -> None:
        line = without_bidi_controls(line)  # it names files, and models by what their files say
        self._log.append(line)
        self._log_listeners.emit(line)  # a listener's bug is logged; the log goes on

    def _set_state(self, state: ManagedState, *, announce: bool = True) -> None:
        self._state = state
        if not announce:
            return
        self._state_listeners.emit(state)

    def _write_presets(self) -> Path:
        self._remove_scratch()
        self._scratch = Path(tempfile.mkdtemp(prefix="modeldesk-llama-"))
        path = self._scratch / "presets.ini"
        path.write_text(self._spec.presets, "utf-8")
        return path

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
