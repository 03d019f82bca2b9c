"""The one mapping of transport failures (httpx, the ollama client, LiteLLM's chain) to domain errors.

Each failure is made for real against a loopback socket: a closed port, a server that never answers,
one that hangs up mid-reply, one that speaks no TLS, one whose body cannot be decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from desktop_app.domain.errors import TimedOut, Unreachable
from desktop_app.services.errors import Transport, TransportWording, transport_error, transport_failure

WORDING = TransportWording(timed_out=("slow", "wait"), not_connected=("down", "start it"), cut=("cut", "retry"))
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A loopback server running `handler` per connection; yields its base URL."""
    connections: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def failure_of(url: str, timeout: float = 5.0) -> httpx.HTTPError:
    async with httpx.AsyncClient(timeout=timeout) as http:
        with pytest.raises(httpx.HTTPError) as caught:
            await http.get(url)  # reads the whole body
    return caught.value


@pytest.mark.asyncio
async def test_a_closed_port_is_not_connected():
    url = f"http://127.0.0.1:{closed_port()}"
    exc = await failure_of(url)
    assert transport_failure(exc) is Transport.NOT_CONNECTED
    error = transport_error(exc, WORDING, url=url)
    assert isinstance(error, Unreachable) and (error.message, error.action, error.url) == ("down", "start it", url)


@pytest.mark.asyncio
async def test_a_server_that_never_answers_timed_out():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.Event().wait()  # until the test ends

    async with serving(silent) as url:
        exc = await failure_of(url, timeout=0.2)
    assert transport_failure(exc) is Transport.TIMED_OUT
    error = transport_error(exc, WORDING, url=url)
    assert isinstance(error, TimedOut) and (error.message, error.action) == ("slow", "wait")


@pytest.mark.asyncio
async def test_a_reply_cut_mid_way_is_cut_and_said_as_not_connected_when_no_cut_sentence_is_given():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async with serving(hang_up) as url:
        exc = await failure_of(url)
    assert transport_failure(exc) is Transport.CUT
    assert transport_error(exc, WORDING, url=url).message == "cut"  # type: ignore[union-attr]
    plain = TransportWording(timed_out=("slow", "wait"), not_connected=("down", "start it"))
    assert transport_error(exc, plain, url=url).message == "down"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_tls_to_a_server_without_it_is_not_connected():
    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the TLS hello
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serving(plain_http) as url:
        exc = await failure_of(url.replace("http://", "https://"))
    assert transport_failure(exc) is Transport.NOT_CONNECTED


@pytest.mark.asyncio
async def test_another_httpx_failure_is_left_to_the_caller_unless_it_has_a_sentence_for_it():
    async def bad_gzip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!")
        await writer.drain()

    async with serving(bad_gzip) as url:
        exc = await failure_of(url)
    assert isinstance(exc, httpx.DecodingError)
    assert transport_failure(exc) is Transport.OTHER
    assert transport_error(exc, WORDING, url=url) is None
    said = TransportWording(timed_out=("slow", "wait"), not_connected=("down", "start it"), other=("odd", "check"))
    assert transport_error(exc, said, url=url).message == "odd"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_the_ollama_clients_connection_error_is_not_connected():
    import ollama

    client = ollama.AsyncClient(host=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ConnectionError) as caught:
        await client.list()
    assert transport_failure(caught.value) is Transport.NOT_CONNECTED


@pytest.mark.asyncio
async def test_a_failure_wrapped_by_another_library_is_found_down_its_chain():
    url = f"http://127.0.0.1:{closed_port()}"
    cause = await failure_of(url)
    wrapped = RuntimeError("APIConnectionError: connection failed")
    wrapped.__cause__ = cause
    assert transport_failure(wrapped) is None  # by itself it says nothing
    assert transport_failure(wrapped, chain=True) is Transport.NOT_CONNECTED


def test_a_reset_or_broken_pipe_is_a_cut_not_a_refusal():
    assert transport_failure(ConnectionResetError()) is Transport.CUT
    assert transport_failure(BrokenPipeError()) is Transport.CUT
    assert transport_failure(ConnectionRefusedError()) is Transport.NOT_CONNECTED
    assert transport_failure(ValueError("no transport")) is None
