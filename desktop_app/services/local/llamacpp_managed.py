"""One llama-server process of our own: an asyncio child whose output goes into a bounded log.

Watched so that an exit nobody asked for is reported as a crash; only the PID it started is ever
signalled. Listeners are plain callables called on the loop; the UI adapts them to Qt signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.domain.errors import BadRequest, ModelNotFound, TimedOut
from desktop_app.domain.llamacpp import (
    BINARY_NAME,
    BINARY_NOT_FOUND,
    BinaryNotFound,
    ManagedServerSpec,
    ManagedState,
    ManagedStatus,
    ServerStartFailed,
    describe_exit,
    why_it_stopped,
)
from desktop_app.domain.text import without_bidi_controls
from desktop_app.services.events import Listeners, Unsubscribe

if TYPE_CHECKING:
    from desktop_app.services.local.llamacpp import LlamaCppService

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
LOG_LINES = 2000
TAIL_LINES = 20


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_binary(setting: str = "", path: str | None = None, installed: Path | None = None) -> Path:
    """The llama-server to run: the configured one, else `llama-server` on PATH (`path`, default
    $PATH), else `installed` (the newest one the app installed)."""
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
    if installed is not None and installed.is_file():
        return installed
    raise BinaryNotFound(BINARY_NOT_FOUND)


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
        installed_binary: Callable[[], Path | None] = lambda: None,
        log_lines: int = LOG_LINES,
        stop_timeout: float = STOP_TIMEOUT_S,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self._spec = spec
        self._service = service
        self._binary_setting = binary_setting
        self._installed_binary = installed_binary
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
        binary = find_binary(spec.binary or self._binary_setting, installed=self._installed_binary())
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
        await self._service.binary_served(binary)
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
