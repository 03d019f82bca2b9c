"""What the two cloud-API fault servers, ``openai_fault`` and ``anthropic_fault``, share.

Both read requests strictly (HTTP/1.1 only, ``Expect: 100-continue`` answered), accept the keys in
``valid_keys``, answer JSON with a Content-Length and stream server-sent events in chunks, and
fail alike: a response that stalls (``forever``) or a body cut in half (``write_whole``). What
each says on the wire (paths, bodies, error shapes, headers) stays in its own module.

Only the standard library is imported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from tests.servers._http import (
    Exchange,
    HttpError,
    LoopbackServer,
    Request,
    frame,
    read_body,
    read_request,
)

Headers = Iterable[tuple[str, str]]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def head(status: int, headers: Headers, reason: str | None = None) -> bytes:
    """A response head; ``reason`` for a status that ``http.HTTPStatus`` does not know."""
    lines = [f"HTTP/1.1 {status} {reason or HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_head(status: int, length: int, headers: Headers, *, close: bool = False, reason: str | None = None) -> bytes:
    """The head of a JSON body of ``length`` bytes; ``headers`` go before Connection."""
    return head(
        status,
        [
            ("content-type", "application/json"),
            ("content-length", str(length)),
            *headers,
            ("connection", "close" if close else "keep-alive"),
        ],
        reason,
    )


def json_answer(
    status: int, payload: Any, headers: Headers, *, close: bool = False, reason: str | None = None
) -> bytes:
    body = dumps(payload)
    return json_head(status, len(body), headers, close=close, reason=reason) + body


def stream_head(headers: Headers) -> bytes:
    """The head of a 200 server-sent event stream; ``headers`` go before Connection."""
    return head(
        200,
        [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("transfer-encoding", "chunked"),
            ("cache-control", "no-cache"),
            *headers,
            ("connection", "keep-alive"),
        ],
    )


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (an ``event:`` line when named, a ``data:`` line) in one chunk."""
    name = b"" if event is None else b"event: " + event.encode() + b"\n"
    return frame(name + b"data: " + dumps(data) + b"\n\n")


def text_of(content: Any) -> str:
    """A message's text: its content string, or the ``text`` of each block of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


async def forever() -> None:
    """A stalled response: ended only by the client leaving (watcher) or stop() (cancel)."""
    await asyncio.get_running_loop().create_future()


async def write_whole(
    writer: asyncio.StreamWriter, state: Exchange, body: bytes, headers: Headers, *, cut: bool
) -> bool:
    """A 200 JSON answer; ``cut`` promises the whole body, delivers half of it and hangs up."""
    writer.write(json_head(200, len(body), headers) + (body[: len(body) // 2] if cut else body))
    state.in_flight = False
    await writer.drain()
    return not cut


class FaultServerBase(LoopbackServer):
    """Strict HTTP/1.1 reading and the accepted keys (``valid_keys``, changeable at any time)."""

    bad_request = HttpError
    default_keys: tuple[str, ...] = ()  # valid_keys when none are given

    def __init__(self, host: str = "127.0.0.1", port: int = 0, valid_keys: set[str] | None = None) -> None:
        super().__init__(host, port)
        self.valid_keys: set[str] = valid_keys if valid_keys is not None else set(self.default_keys)

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        """One request with its body (answering ``Expect: 100-continue``); None on a clean EOF."""
        req = await read_request(reader)
        if req is not None:
            if req.headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            req.raw_body = await read_body(req, reader)
        return req
