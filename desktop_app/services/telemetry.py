"""Telemetry export: spans of request attempts sent to the user's OTLP/HTTP endpoint, when they turn it on.

Why the protobuf is written here instead of with opentelemetry-sdk + the OTLP exporter: a span of
ours is a dozen attributes and one event, and the OTLP trace messages it needs are six small ones
(opentelemetry/proto/trace/v1/trace.proto), so ~60 lines of wire encoding replace three packages,
protobuf and the SDK's global tracer provider, and nothing at all is imported while export is off.
The tests decode what is sent with opentelemetry-proto's generated classes, so the encoding is
checked against the real schema.

Spans queue in memory (bounded: when it is full, or the endpoint is down, spans are dropped and
counted) and go out in batches from one worker thread, so a chat never waits for the collector.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from desktop_app.domain.telemetry import (
    SCOPE_NAME,
    SECRET_ENTRY_ID,
    Attempt,
    AttrValue,
    Span,
    SpanEvent,
    TelemetrySettings,
    span_of,
    traces_url,
)
from desktop_app.services.accounts import header_secrets

if TYPE_CHECKING:
    from desktop_app.services.accounts.secrets import SecretStore
    from desktop_app.services.settings import SettingsService

log = logging.getLogger(__name__)

SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2
SEND_TIMEOUT_S = 5.0
MAX_QUEUE = 2048  # spans waiting; more are dropped (and counted)
MAX_BATCH = 256  # spans per request


# --- OTLP protobuf (ExportTraceServiceRequest), written by hand ------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as its two's complement, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _str(field: int, text: str) -> bytes:
    return _len(field, text.encode("utf-8")) if text else b""


def _fixed64(field: int, value: int) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<Q", value)


def _any_value(value: AttrValue) -> bytes:
    if isinstance(value, bool):
        return _varint(2 << 3) + _varint(int(value))
    if isinstance(value, int):
        return _varint(3 << 3) + _varint(value)
    if isinstance(value, float):
        return _varint(4 << 3 | 1) + struct.pack("<d", value)
    if isinstance(value, tuple):
        return _len(5, b"".join(_len(1, _any_value(v)) for v in value))
    return _len(1, value.encode("utf-8"))


def _attributes(field: int, attributes: Mapping[str, AttrValue]) -> bytes:
    return b"".join(_len(field, _str(1, k) + _len(2, _any_value(v))) for k, v in attributes.items())


def _event(event: SpanEvent) -> bytes:
    return _fixed64(1, event.time_ns) + _str(2, event.name) + _attributes(3, event.attributes)


def _span(span: Span) -> bytes:
    body = (
        _len(1, span.trace_id)
        + _len(2, span.span_id)
        + _str(5, span.name)
        + _varint(6 << 3)
        + _varint(SPAN_KIND_CLIENT)
        + _fixed64(7, span.start_ns)
        + _fixed64(8, span.end_ns)
        + _attributes(9, span.attributes)
        + b"".join(_len(11, _event(e)) for e in span.events)
    )
    if span.error:
        body += _len(15, _str(2, span.error) + _varint(3 << 3) + _varint(STATUS_ERROR))
    return body


def encode(spans: Iterable[Span], resource: Mapping[str, AttrValue]) -> bytes:
    """An ExportTraceServiceRequest with `spans` under one resource and the "modeldesk" scope."""
    from desktop_app import __version__

    scope = _len(1, _str(1, SCOPE_NAME) + _str(2, __version__)) + b"".join(_len(2, _span(s)) for s in spans)
    return _len(1, _len(1, _attributes(1, resource)) + _len(2, scope))


# --- OTLP protobuf (ExportTraceServiceResponse), read by hand ---------------------------------------


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("a varint runs past the end")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> Iterable[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as ints, length-delimited as bytes."""
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
            yield field, value
        elif wire == 2:
            size, at = _read_varint(data, at)
            if at + size > len(data):
                raise ValueError("a field runs past the end")
            yield field, data[at : at + size]
            at += size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} is not used by OTLP")


def partial_success(body: bytes) -> tuple[int, str]:
    """What an ExportTraceServiceResponse says the collector rejected: (rejected_spans,
    error_message); (0, "") when it took everything (an empty body included). ValueError when
    the body is not such a message."""
    rejected, message = 0, ""
    for field, value in _fields(body):
        if field == 1 and isinstance(value, bytes):  # partial_success: ExportTracePartialSuccess
            for inner, inner_value in _fields(value):
                if inner == 1 and isinstance(inner_value, int):
                    rejected = inner_value
                elif inner == 2 and isinstance(inner_value, bytes):
                    message = inner_value.decode("utf-8", "replace")
    return rejected, message


def resource_attributes() -> dict[str, AttrValue]:
    from desktop_app import __version__

    return {"service.name": "modeldesk", "service.version": __version__}


# --- sending ---------------------------------------------------------------------------------------


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, bytes]:
    """POST one OTLP/HTTP protobuf request; the HTTP status and the answer's body. Raises
    httpx.HTTPError when unreachable."""
    import httpx

    from desktop_app.services.http_client import LOOPBACK_HOSTS

    # The user's proxy settings, loopback direct: as services/http_client.py does for the async client.
    mounts: dict[str, httpx.BaseTransport | None] = {
        f"all://{'[' + host + ']' if ':' in host else host}": None for host in LOOPBACK_HOSTS
    }
    sent = {**headers, "Content-Type": "application/x-protobuf"}
    with httpx.Client(trust_env=True, mounts=mounts, timeout=timeout_s, follow_redirects=False) as client:
        try:
            response = client.post(url, content=body, headers=sent)
            return response.status_code, response.content
        except httpx.InvalidURL:
            raise httpx.ConnectError("the URL cannot be used") from None


# (url, body, headers, timeout_s) -> (HTTP status, the answer's body)
Post = Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes]]


def _failure(exc: Exception) -> str:
    """Why a send failed, in a few words (never a header: httpx errors do not hold them)."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    if isinstance(exc, httpx.HTTPError):
        return "it could not be reached"
    return type(exc).__name__


class SpanExporter:
    """Batches spans to one endpoint from a worker thread; `add` never blocks.

    `interval_s` is how long a batch waits for more spans (tests pass 0); `close` sends what is queued.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        interval_s: float = 5.0,
        max_queue: int = MAX_QUEUE,
        max_batch: int = MAX_BATCH,
        timeout_s: float = SEND_TIMEOUT_S,
        post: Post = _post,
    ) -> None:
        self.url = url
        self._headers = dict(headers)
        self._interval_s, self._max_queue, self._max_batch = interval_s, max_queue, max_batch
        self._timeout_s, self._post = timeout_s, post
        self._resource = resource_attributes()
        self._cond = threading.Condition()
        self._queue: deque[Span] = deque()
        self._sending = 0
        self._flushing = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.exported = 0
        self.dropped = 0
        self.last_failure = ""

    def add(self, span: Span) -> None:
        with self._cond:
            if self._closing or len(self._queue) >= self._max_queue:
                self.dropped += 1
                return
            self._queue.append(span)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="telemetry-export", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Send what is queued now; True when it all went out (or was dropped) within `timeout_s`."""
        with self._cond:
            self._flushing = True
            self._cond.notify_all()
            done = self._cond.wait_for(lambda: not self._queue and not self._sending, timeout_s)
            self._flushing = False
            return done

    def close(self, timeout_s: float) -> bool:
        """Flush, then end the worker; spans added afterwards are dropped."""
        done = self.flush(timeout_s)
        with self._cond:
            self._closing = True
            self.dropped += len(self._queue)  # what a stuck endpoint kept from going out
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and done:
            thread.join(timeout_s)
        return done

    def _ready(self) -> bool:
        return self._closing or self._flushing or len(self._queue) >= self._max_batch

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue and self._closing:
                    return
                self._cond.wait_for(self._ready, self._interval_s)
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                self._sending = len(batch)
            failure, rejected, why = "", 0, ""
            try:
                status, answer = self._post(self.url, encode(batch, self._resource), self._headers, self._timeout_s)
                if not 200 <= status < 300:
                    failure = f"it answered HTTP {status}"
                else:
                    rejected, why = _rejected(answer, len(batch))
            except Exception as exc:  # noqa: BLE001 - any failure drops the batch, never the app
                failure = _failure(exc)
            with self._cond:
                if failure:
                    self.dropped += len(batch)
                    if failure != self.last_failure:
                        log.warning("telemetry export to %s failed: %s; spans are dropped", self.url, failure)
                    self.last_failure = failure
                else:
                    # OTLP's partial success: a 200 whose answer counts the spans the collector refused.
                    self.exported += len(batch) - rejected
                    self.dropped += rejected
                    if rejected:
                        failure = f"it rejected {rejected} of {len(batch)} spans ({why or 'no reason given'})"
                        if failure != self.last_failure:
                            log.warning("telemetry export to %s: %s", self.url, failure)
                    self.last_failure = failure
                self._sending = 0
                self._cond.notify_all()


def send_test_span(url: str, headers: Mapping[str, str], *, post: Callable[..., tuple[int, bytes]] = _post) -> str:
    """Send one test span to `url` (blocking) and say in one sentence whether the endpoint took it."""
    from desktop_app.domain.chat import ChatParams

    now = _now_ns()
    attempt = Attempt("modeldesk", "", "Test", "", "modeldesk-test", ChatParams(), "ok", now, now)
    span = span_of(attempt, include_content=False, trace_id=os.urandom(16), span_id=os.urandom(8))
    try:
        status, answer = post(url, encode([span], resource_attributes()), headers, SEND_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - said to the user
        return f"The test span was not sent: {_failure(exc)} at {url}."
    if 200 <= status < 300:
        rejected, why = _rejected(answer, 1)
        if rejected:
            return f"The endpoint answered HTTP {status} but rejected the test span: {why or 'it gave no reason'}."
        return f"The endpoint took the test span (HTTP {status})."
    why = {401: "; check the headers", 403: "; check the headers", 404: "; check the URL"}.get(status, "")
    return f"The endpoint refused the test span with HTTP {status}{why}."


def _rejected(answer: bytes, sent: int) -> tuple[int, str]:
    """How many of `sent` spans a 2xx answer says were rejected, and why (at most 200 characters).
    An answer that is not an ExportTraceServiceResponse (a collector answering JSON or text
    despite the protobuf request) counts as taking them all, as the status says."""
    try:
        rejected, why = partial_success(answer)
    except ValueError:
        return 0, ""
    return max(0, min(rejected, sent)), " ".join(why.split())[:200]


def _now_ns() -> int:
    import time

    return time.time_ns()


class Telemetry:
    """What the dispatcher tells of each attempt, turned into spans when the user turned export on.

    `configure()` (after start and after each change) reads the credential headers from the keyring
    and replaces the exporter; while export is off there is no exporter, thread or import.
    """

    def __init__(
        self,
        *,
        settings: SettingsService,
        secrets: SecretStore,
        interval_s: float = 5.0,
        post: Post = _post,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self.interval_s = interval_s  # how long a batch waits for more spans; read at `configure`
        self._post = post
        self._exporter: SpanExporter | None = None
        self._include_content = False
        self._retired_dropped = 0  # dropped by exporters replaced since

    @property
    def settings(self) -> TelemetrySettings:
        return self._settings.current.telemetry

    @property
    def active(self) -> bool:
        return self._exporter is not None

    @property
    def include_content(self) -> bool:
        return self._include_content

    @property
    def exported(self) -> int:
        return self._exporter.exported if self._exporter else 0

    @property
    def dropped(self) -> int:
        return self._retired_dropped + (self._exporter.dropped if self._exporter else 0)

    def record(self, attempt: Attempt) -> None:
        exporter = self._exporter
        if exporter is not None:
            trace_id = attempt.trace_id or os.urandom(16)
            exporter.add(
                span_of(attempt, include_content=self._include_content, trace_id=trace_id, span_id=os.urandom(8))
            )

    async def headers(self, settings: TelemetrySettings) -> dict[str, str]:
        """The headers to send: the plain ones and the credential ones read from the keyring."""
        secret = await header_secrets.read(self._secrets, SECRET_ENTRY_ID) if settings.secret_headers else {}
        return {**settings.headers, **{n: v for n, v in secret.items() if n in settings.secret_headers}}

    async def save(self, settings: TelemetrySettings, secret_values: Mapping[str, str]) -> None:
        """Keep `settings` (credential headers' values in the keyring first), then export by them."""
        await header_secrets.write(self._secrets, SECRET_ENTRY_ID, secret_values)
        await self._settings.update(telemetry=settings)
        await self.configure()

    async def configure(self) -> None:
        """Export by the settings as they are now (after start, and after each change)."""
        import asyncio

        settings = self._settings.current.telemetry
        old, self._exporter = self._exporter, None
        if old is not None:
            await asyncio.to_thread(old.close, 1.0)
            self._retired_dropped += old.dropped
        if settings.active:
            headers = await self.headers(settings)
            self._include_content = settings.include_content
            self._exporter = SpanExporter(
                traces_url(settings.endpoint), headers, interval_s=self.interval_s, post=self._post
            )

    async def send_test(self, endpoint: str, headers: Mapping[str, str]) -> str:
        import asyncio

        return await asyncio.to_thread(send_test_span, traces_url(endpoint), headers, post=self._post)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Send what is queued now; True when it went out (or was dropped) within `timeout_s`."""
        import asyncio

        exporter = self._exporter
        return True if exporter is None else await asyncio.to_thread(exporter.flush, timeout_s)

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Send what is queued, within `timeout_s` (a share of the quit's time limit)."""
        import asyncio

        exporter, self._exporter = self._exporter, None
        if exporter is not None:
            await asyncio.to_thread(exporter.close, timeout_s)
            self._retired_dropped += exporter.dropped
