"""Connection plumbing shared by the hand-written loopback HTTP/1.1 test servers.

``LoopbackServer`` owns the life cycle (a thread with its own event loop, or ``serve()`` on the
caller's loop, as the ``python -m`` entry points do), the accept loop and the keep-alive loop of
each connection, the watch for a client leaving mid-response, and what tests read back: every
request (``requests``, ``wait_for_requests``) and the clients that left mid-response
(``disconnects``, ``client_disconnected``). A server supplies the wire format through hooks:
``_read`` (one request, body included, usually ``read_request`` and ``read_body``),
``_bad_request_answer`` (the reply to a malformed one), ``_respond`` and ``_client_left``.

Only the standard library is imported, so the subprocess servers start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024


class HttpError(Exception):
    """A request that is not acceptable HTTP/1.1; the server answers ``status`` and closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated ones joined with ", "
    raw_body: bytes = b""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query
    headers: dict[str, str]  # lower-case names
    body: Any | None  # parsed JSON body, None when absent or unparsable
    connection: int  # per-connection serial number, to check keep-alive reuse

    def json(self) -> Any | None:
        """The parsed body, spelled like ``httpx.Response.json()``."""
        return self.body


def parse_json(raw: bytes) -> Any | None:
    """The JSON in ``raw``; None when it is empty or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def read_request(reader: asyncio.StreamReader, *, any_http1: bool = False) -> Request | None:
    """Parse one request head; None on a clean EOF between requests.

    Only ``HTTP/1.1`` is accepted (505 otherwise), or with ``any_http1`` any ``HTTP/1.x`` (400
    otherwise). The body is left to ``read_body``.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400, "Malformed HTTP request head.") from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "Request header fields too large.") from None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha():
        raise HttpError(400, "Malformed request line.")
    if parts[2] != "HTTP/1.1":
        if not any_http1:
            raise HttpError(505, "Only HTTP/1.1 is supported.")
        if not parts[2].startswith("HTTP/1."):
            raise HttpError(400, "Malformed request line.")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"Malformed header line: {line!r}")
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return Request(parts[0], parts[1], headers)


async def read_body(req: Request, reader: asyncio.StreamReader) -> bytes:
    """The body announced by Content-Length (none without one)."""
    if "transfer-encoding" in req.headers:  # HTTP clients send JSON with a Content-Length
        raise HttpError(501, "Chunked request bodies are not supported.")
    length = req.headers.get("content-length")
    if length is None:
        return b""
    if not length.isdigit():
        raise HttpError(400, "Invalid Content-Length.")
    if int(length) > MAX_BODY:
        raise HttpError(413, "Request body too large.")
    return await reader.readexactly(int(length))


def frame(data: bytes) -> bytes:
    """One chunk of a chunked (``Transfer-Encoding: chunked``) body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


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


async def send(writer: asyncio.StreamWriter, data: bytes, *, close: bool = False) -> bool:
    """Write a whole answer; the result is ``_respond``'s: False when the connection closes."""
    writer.write(data)
    await writer.drain()
    return not close


async def end_chunked(writer: asyncio.StreamWriter, state: Exchange, tail: bytes = b"") -> bool:
    """Write ``tail`` and the last (zero-length) chunk in one go: the answer is complete."""
    writer.write(tail + b"0\r\n\r\n")
    state.in_flight = False
    await writer.drain()
    return True


class _TrackedProtocol(asyncio.StreamReaderProtocol):
    """`asyncio.start_server`'s protocol, with its transport kept in `transports` while open, so the
    server can close a connection when it stops even if the connection's handler never ran (a
    client that connected just then would otherwise wait on an open socket for ever)."""

    def __init__(
        self,
        transports: set[asyncio.BaseTransport],
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
        closing: Callable[[], bool],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(asyncio.StreamReader(limit=MAX_HEAD, loop=loop), handler, loop=loop)
        self._transports = transports
        self._closing = closing
        self._own: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._closing():  # made while the server stops: its handler would never run
            transport.abort()
            return
        self._own = transport
        self._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._own is not None:
            self._transports.discard(self._own)
        super().connection_lost(exc)


class LoopbackServer:
    """Base class: subclasses set the class attributes below and implement the hooks."""

    thread_name = "loopback-server"
    start_error = "the loopback server failed to start"
    bad_request: type[Exception] = Exception  # what ``_read`` raises for malformed HTTP
    abort_exceptions: tuple[type[BaseException], ...] = ()  # responder errors that reset the socket
    close_on_pipelining = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.client_disconnected = threading.Event()
        # Guards the fields below and a subclass's own state; notified per recorded request.
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transports: set[asyncio.BaseTransport] = set()
        self._conn_serial = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- what tests read back, from any thread ----------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        """Clients that left while a response was in flight."""
        with self._lock:
            return self._disconnects

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were recorded."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        """Forget the recorded requests and disconnects."""
        with self._lock:
            self._requests.clear()
            self._disconnects = 0
        self.client_disconnected.clear()

    # -- life cycle, callable from any thread ---------------------------------------------
    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(on_ready=lambda _port: ready.set()))
            except BaseException as exc:  # noqa: BLE001 - surfaced to start()'s caller
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
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        self._loop, self._stop = loop, stop
        server = await loop.create_server(
            lambda: _TrackedProtocol(self._transports, self._handle, stop.is_set, loop), self.host, self.port
        )
        self.port = server.sockets[0].getsockname()[1]
        if on_ready is not None:
            on_ready(self.port)
        try:
            await stop.wait()
        finally:
            server.close()
            # Stalled streams never finish by themselves: cancel every open connection.
            for task in [*self._tasks, *self._background_tasks()]:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for transport in list(self._transports):  # connections whose handler never ran, too
                transport.abort()
            # An aborted socket closes in a callback abort() queued; one queued after it has run last.
            closed = loop.create_future()
            loop.call_soon(closed.set_result, None)
            await closed
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

    async def _exchange(self, req: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
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

    def _record(self, req: Request, conn: int) -> None:
        """Note a request; ``conn`` is the per-connection serial number."""
        recorded = RecordedRequest(
            req.method, req.path.split("?", 1)[0], dict(req.headers), parse_json(req.raw_body), conn
        )
        with self._lock:
            self._requests.append(recorded)
            self._lock.notify_all()

    async def _respond(self, req: Any, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        """Write the answer; False closes the connection."""
        raise NotImplementedError

    def _client_left(self) -> None:
        """The client went away while a response was in flight."""
        with self._lock:
            self._disconnects += 1
        self.client_disconnected.set()


def run_main(server: LoopbackServer) -> None:
    """The ``python -m`` entry: print ``PORT=<n>`` once bound, serve until SIGTERM/SIGINT."""

    def ready(port: int) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
        print(f"PORT={port}", flush=True)

    asyncio.run(server.serve(on_ready=ready))
