"""Connection plumbing shared by the hand-written loopback HTTP/1.1 test servers.

``LoopbackServer`` owns the life cycle (a thread with its own event loop, or ``serve()`` on the
caller's loop, as the ``python -m`` entry points do), the accept loop and the keep-alive loop of
each connection, and the watch for a client leaving mid-response. A server supplies the wire
format through hooks: ``_read`` (one request, body included), ``_bad_request_answer`` (the reply
to a malformed one), ``_record``, ``_respond`` and ``_client_left``.

Only the standard library is imported, so the subprocess servers start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

MAX_HEAD = 64 * 1024


@dataclass
class Exchange:
    """State of one request/response, shared with the task watching the client."""

    in_flight: bool = False  # response started and not fully written
    pipelined: bool = False  # the client sent bytes mid-response; we close afterwards


async def watch_client(reader: asyncio.StreamReader, state: Exchange) -> None:
    """Return once the client closes (EOF or reset) during a response."""
    try:
        while await reader.read(65536):
            state.pipelined = True  # pipelining is not supported: close after this response
    except OSError:
        pass


class LoopbackServer:
    """Base class: subclasses set the class attributes below and implement the hooks."""

    thread_name = "loopback-server"
    start_error = "the loopback server failed to start"
    bad_request: type[Exception] = Exception  # what ``_read`` raises for malformed HTTP
    abort_exceptions: tuple[type[BaseException], ...] = ()  # responder errors that reset the socket
    close_on_pipelining = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn_serial = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- life cycle, callable from any thread ---------------------------------------------
    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(on_ready=lambda _port: ready.set()))
            except BaseException as exc:  # surfaced to start()'s caller
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise RuntimeError(self.start_error) from failure[0]
        return self.base_url

    def request_stop(self) -> None:
        """Ask the serving loop to shut down, without waiting (safe from any thread)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- event loop side --------------------------------------------------------------------
    async def serve(self, on_ready: Callable[[int], None] | None = None) -> None:
        """Serve on the running loop until ``stop()``; calls ``on_ready(port)`` once bound."""
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port, limit=MAX_HEAD)
        self.port = server.sockets[0].getsockname()[1]
        if on_ready is not None:
            on_ready(self.port)
        try:
            await self._stop.wait()
        finally:
            server.close()
            # Stalled streams never finish by themselves: cancel every open connection.
            for task in [*self._tasks, *self._background_tasks()]:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._conn_serial += 1
        conn = self._conn_serial
        try:
            while True:
                try:
                    req = await self._read(reader, writer)
                    if req is None:
                        break
                except self.bad_request as exc:
                    writer.write(self._bad_request_answer(exc))
                    await writer.drain()
                    break
                self._record(req, conn)
                if not await self._exchange(req, reader, writer):
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away between requests: nothing to report
        except asyncio.CancelledError:
            # stop() cancels open connections. Ending quietly matters: Python 3.11's stream
            # callback calls task.exception() on a cancelled task and logs a spurious traceback.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _exchange(self, req: Any, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> bool:
        """Answer one request while watching for the client leaving; True keeps the connection."""
        state = Exchange()
        watcher = asyncio.create_task(watch_client(reader, state))
        responder = asyncio.create_task(self._respond(req, writer, state))
        try:
            done, _ = await asyncio.wait({watcher, responder}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            responder.cancel()  # no-op when it already finished
            await asyncio.gather(watcher, responder, return_exceptions=True)
        if responder in done and not responder.cancelled():
            exc = responder.exception()
            if exc is None:
                keep = responder.result() and req.headers.get("connection", "").lower() != "close"
                return keep and not (self.close_on_pipelining and state.pipelined)
            if isinstance(exc, self.abort_exceptions):
                writer.transport.abort()
                return False
            if not isinstance(exc, OSError):
                raise exc
        # Either the watcher saw EOF/reset or a write failed: the client left.
        if state.in_flight:
            self._client_left()
        return False

    # -- hooks --------------------------------------------------------------------------------
    def _background_tasks(self) -> Iterable[asyncio.Task[Any]]:
        """Tasks besides the connections that ``stop()`` cancels (not awaited)."""
        return ()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        """One request with its body; None on a clean EOF; raises ``bad_request``."""
        raise NotImplementedError

    def _bad_request_answer(self, exc: Exception) -> bytes:
        """The whole response to a malformed request (the connection closes after it)."""
        raise NotImplementedError

    def _record(self, req: Any, conn: int) -> None:
        """Note a request; ``conn`` is the per-connection serial number."""

    async def _respond(self, req: Any, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        """Write the answer; False closes the connection."""
        raise NotImplementedError

    def _client_left(self) -> None:
        """The client went away while a response was in flight."""


def run_main(server: LoopbackServer) -> None:
    """The ``python -m`` entry: print ``PORT=<n>`` once bound, serve until SIGTERM/SIGINT."""

    def ready(port: int) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
        print(f"PORT={port}", flush=True)

    asyncio.run(server.serve(on_ready=ready))
