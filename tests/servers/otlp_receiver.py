"""A loopback OpenTelemetry collector's OTLP/HTTP trace receiver, written from the OTLP specification
(opentelemetry.io/docs/specs/otlp/#otlphttp).

It takes ``POST /v1/traces`` with ``Content-Type: application/x-protobuf``, decodes the body as an
``ExportTraceServiceRequest`` with opentelemetry-proto's generated classes (the real schema: a body
that does not parse is refused with 400) and answers 200 with an empty, protobuf-encoded
``ExportTraceServiceResponse``; with ``partial`` set to (n, message) it answers as a collector that
took the request but refused n of its spans (the spec's "partial success": 200, with
``partial_success.rejected_spans`` and ``error_message`` set). Another path answers 404, another method 405, another content type
415. ``required_headers`` makes it answer 401 to a request without them, as an authenticating
collector does. Tests read back the decoded spans (``spans``, ``wait_for_spans``) and the raw bodies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.servers._http import Exchange, HttpError, LoopbackServer, Request, read_body, read_request

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


def _answer(status: int, body: bytes = b"", content_type: str = "text/plain") -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: {content_type}\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode("latin-1") + body


def value_of(value: AnyValue) -> Any:
    """An attribute's AnyValue as plain Python (arrays as tuples)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(value_of(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


def attributes(span_or_event: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in span_or_event.attributes}


class OtlpReceiver(LoopbackServer):
    thread_name = "otlp-receiver"
    start_error = "the OTLP receiver failed to start"
    bad_request = HttpError

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, required_headers: dict[str, str] | None = None):
        super().__init__(host, port)
        self.required_headers = {k.lower(): v for k, v in (required_headers or {}).items()}
        self.bodies: list[bytes] = []  # every accepted body as it came
        self.exports: list[ExportTraceServiceRequest] = []
        self.resources: list[dict[str, Any]] = []
        self.partial: tuple[int, str] | None = None  # (rejected spans, why) answered to every export

    @property
    def spans(self) -> list[Span]:
        with self._lock:
            return [s for e in self.exports for rs in e.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.spans) >= count, timeout)

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        req = await read_request(reader)
        if req is not None:
            req.raw_body = await read_body(req, reader)
        return req

    def _bad_request_answer(self, exc: Exception) -> bytes:
        return _answer(exc.status if isinstance(exc, HttpError) else 400, str(exc).encode())

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        writer.write(self._answer(req))
        await writer.drain()
        return True

    def _answer(self, req: Request) -> bytes:
        if req.path.split("?", 1)[0] != "/v1/traces":
            return _answer(404, b"only /v1/traces is served here")
        if req.method != "POST":
            return _answer(405, b"POST only")
        if req.headers.get("content-type", "").split(";")[0].strip() != "application/x-protobuf":
            return _answer(415, b"send application/x-protobuf")
        for name, value in self.required_headers.items():
            if req.headers.get(name) != value:
                return _answer(401, b"missing or wrong credentials")
        export = ExportTraceServiceRequest()
        try:
            export.ParseFromString(req.raw_body)
        except DecodeError as exc:
            return _answer(400, f"not an ExportTraceServiceRequest: {exc}".encode())
        with self._lock:
            self.bodies.append(req.raw_body)
            self.exports.append(export)
            self.resources.extend(attributes(rs.resource) for rs in export.resource_spans)
            self._lock.notify_all()
        response = ExportTraceServiceResponse()
        if self.partial is not None:
            rejected, why = self.partial
            response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=why))
        return _answer(200, response.SerializeToString(), "application/x-protobuf")
