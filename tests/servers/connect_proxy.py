"""A loopback HTTPS proxy that tunnels with CONNECT, and a TLS front for a plain loopback server.

``ConnectProxy`` does what a corporate proxy does for an ``https://`` URL (RFC 9110 9.3.6): it reads
``CONNECT host:port HTTP/1.1``, opens a connection to that authority, answers ``200 Connection
established`` and then copies bytes both ways without reading them. Authorities resolve through
``routes`` (a name the test made up, e.g. ``models.example.test:443``, to a loopback port), so a
client can only reach such a name through the proxy; an unknown authority gets ``502``, any other
method ``405``. Every CONNECT head is recorded (``connects``), with its headers, to check that no
credentials were sent. ``TlsFront`` terminates TLS with a certificate made for the test and passes
the plain bytes to an ordinary loopback server, as a load balancer in front of an API does.

Only the standard library is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class Connect:
    authority: str  # host:port as the client asked for it
    headers: dict[str, str]  # lower-case names


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter], b: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()


class _ThreadServer:
    """A server on its own thread and event loop; ``with`` starts and stops it."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = 0
        self._handler = handler
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def __enter__(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise RuntimeError(f"{type(self).__name__} failed to start") from failure[0]
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._track, "127.0.0.1", 0, ssl=self._ssl)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # stopping: end quietly (Python 3.11 logs a cancelled stream callback otherwise)
        finally:
            self._tasks.discard(task)
            writer.close()


class ConnectProxy(_ThreadServer):
    """See the module docstring. ``url`` is what goes into HTTPS_PROXY."""

    def __init__(self, routes: dict[str, int]) -> None:
        super().__init__(self._handle)
        self._routes = dict(routes)
        self._lock = threading.Lock()
        self._connects: list[Connect] = []
        self.other_requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connects(self) -> list[Connect]:
        with self._lock:
            return list(self._connects)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
        method, _, rest = head[0].partition(" ")
        authority, _, version = rest.partition(" ")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method != "CONNECT" or version != "HTTP/1.1":
            with self._lock:
                self.other_requests.append(head[0])
            writer.write(
                b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        with self._lock:
            self._connects.append(Connect(authority, headers))
        port = self._routes.get(authority)
        if port is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        upstream = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), upstream)


class TlsFront(_ThreadServer):
    """TLS on ``port`` for the plain HTTP server on ``upstream_port``; ``certfile`` holds key and cert."""

    def __init__(self, upstream_port: int, certfile: Path) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile)
        super().__init__(self._handle, context)
        self._upstream_port = upstream_port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        await _splice((reader, writer), upstream)
