"""A strict loopback server speaking the OpenAI Chat Completions wire format, with faults.

HTTP/1.1 is written by hand on top of ``asyncio.start_server`` so that tests control every
byte: chunked transfer-encoding for SSE, abrupt connection cuts and stalled streams.
The requested model name picks the behaviour (see ``MODELS``). Use it in-process::

    with FaultServer() as server:          # or: base_url = server.start(); ...; server.stop()
        base_url = server.base_url          # http://127.0.0.1:PORT/v1

or as a subprocess: ``python -m tests.servers.openai_fault [--port N]`` prints ``PORT=<n>``
as its first stdout line and serves until SIGTERM/SIGINT.

Only the standard library is imported, so the subprocess starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from tests.servers._http import Exchange as _Exchange
from tests.servers._http import LoopbackServer, run_main

MODELS: dict[str, str] = {
    "ok": "40 word chunks, ~5 ms apart (also used for any unlisted model name)",
    "slow": "500 word chunks, 20 ms apart",
    "fast-20000": "fast-<N>: N one-token chunks written as fast as possible",
    "fault-401": "401 invalid_api_key",
    "fault-403": "403 permission_denied",
    "fault-404": "404 model_not_found",
    "fault-429": "429 rate_limit_exceeded, retry-after: 7",
    "fault-500": "500 server_error",
    "fault-context": "400 context_length_exceeded",
    "fault-cut": "10 chunks, then the socket is closed mid-stream",
    "fault-malformed": "5 chunks, an invalid JSON event, then [DONE]",
    "fault-stall": "3 chunks, then silence until the client leaves",
    "delay-2500": "delay-<ms>: headers at once, the first token <ms> later (a model loading)",
}
OWNER = "modeldesk-test"
MAX_BODY = 16 * 1024 * 1024
# fast-N cycles through a few distinct tokens: LiteLLM cuts a stream whose chunks repeat one text
# 100 times in a row (its guard against a looping model), and real text does not do that.
FAST_TOKENS = tuple(f"t{i} " for i in range(8))
# Every parameter the real endpoint accepts; anything else is rejected like OpenAI does.
CHAT_PARAMS = frozenset(
    "messages model audio frequency_penalty function_call functions logit_bias logprobs"
    " max_completion_tokens max_tokens metadata modalities n parallel_tool_calls prediction"
    " presence_penalty prompt_cache_key prompt_cache_retention reasoning_effort response_format"
    " safety_identifier seed service_tier stop store stream stream_options temperature"
    " tool_choice tools top_logprobs top_p user verbosity web_search_options".split()
)
ROLES = ("system", "user", "assistant", "tool", "function", "developer")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any | None  # parsed JSON body, None when absent or unparsable
    connection: int  # per-connection serial number, to check keep-alive reuse

    def json(self) -> Any | None:
        """The parsed body, spelled like ``httpx.Response.json()``."""
        return self.body


class ApiError(Exception):
    """An error response with OpenAI's body; ``close`` drops the connection afterwards."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: tuple[tuple[str, str], ...] = (), close: bool = False) -> None:
        super().__init__(message)
        self.status, self.headers, self.close = status, headers, close
        self.payload = {"error": {"message": message, "type": type_, "param": param,
                                  "code": code}}


def _mask_key(key: str) -> str:
    # OpenAI shows only the ends of a wrong key; short keys reveal almost nothing.
    return f"{key[:4]}***{key[-4:]}" if len(key) > 12 else f"{key[:2]}***"


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a decimal"),
                       (str, "a string"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(obj: Any) -> bytes:
    return _frame(b"data: " + _dumps(obj) + b"\n\n")


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_response(status: int, payload: Any, request_id: str, close: bool,
                   extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = _dumps(payload)
    headers = [("content-type", "application/json"), ("content-length", str(len(body))),
               ("x-request-id", request_id), *extra,
               ("connection", "close" if close else "keep-alive")]
    return _head(status, headers) + body


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Parse one request; None on a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ApiError(400, "Malformed HTTP request head.", close=True) from None
        return None
    except asyncio.LimitOverrunError:
        raise ApiError(431, "Request header fields too large.", close=True) from None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha():
        raise ApiError(400, "Malformed request line.", close=True)
    if parts[2] != "HTTP/1.1":
        raise ApiError(505, "Only HTTP/1.1 is supported.", close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ApiError(400, f"Malformed header line: {line!r}", close=True)
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return _Request(parts[0], parts[1], headers, b"")


async def _read_body(req: _Request, reader: asyncio.StreamReader) -> bytes:
    if "transfer-encoding" in req.headers:  # HTTP clients send JSON with a Content-Length
        raise ApiError(501, "Chunked request bodies are not supported.", close=True)
    cl = req.headers.get("content-length")
    if cl is None:
        return b""
    if not cl.isdigit():
        raise ApiError(400, "Invalid Content-Length.", close=True)
    if int(cl) > MAX_BODY:
        raise ApiError(413, "Request body too large.", close=True)
    return await reader.readexactly(int(cl))


async def _read_full(reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> _Request | None:
    """One request with its body (answering ``Expect: 100-continue``); None on a clean EOF."""
    req = await _read_request(reader)
    if req is not None:
        if req.headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        req.raw_body = await _read_body(req, reader)
    return req


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass
class _Chat:
    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None
    prompt_tokens: int


def _validate_chat(body: Any) -> _Chat:
    """Reject what OpenAI rejects, with its messages, params and codes."""
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. The OpenAI API "
                       "expects a JSON payload, but what was sent was not valid JSON.")
    if unknown := sorted(set(body) - CHAT_PARAMS):
        raise ApiError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}")

    def missing(name: str) -> ApiError:
        return ApiError(400, f"Missing required parameter: '{name}'.", param=name,
                        code="missing_required_parameter")

    def bad_type(name: str, value: Any, expected: str) -> ApiError:
        return ApiError(400, f"Invalid type for '{name}': expected {expected}, but got "
                        f"{_json_type(value)} instead.", param=name, code="invalid_type")

    def number(name: str, kind: str, low: float, high: float | None = None) -> Any:
        value = body.get(name)
        if value is None:
            return None
        types = (int,) if kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, types):
            raise bad_type(name, value, f"an {kind}" if kind == "integer" else f"a {kind}")
        if high is None and value < low:
            raise ApiError(400, f"Invalid '{name}': integer below minimum value. Expected a value"
                           f" >= {low}, but got {value} instead.", param=name,
                           code="integer_below_min_value")
        if high is not None and not low <= value <= high:
            raise ApiError(400, f"Invalid '{name}': decimal out of range. Expected a value "
                           f"between {low} and {high}, but got {value} instead.", param=name,
                           code="decimal_out_of_range")
        return value

    if "model" not in body:
        raise ApiError(400, "you must provide a model parameter")
    if not isinstance(body["model"], str):
        raise bad_type("model", body["model"], "a string")
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise bad_type("messages", messages, "an array")
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum "
                       "length 1, but got an empty array instead.", param="messages",
                       code="empty_array")
    words = 0
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise bad_type(where, msg, "an object")
        if "role" not in msg:
            raise missing(f"{where}.role")
        if msg["role"] not in ROLES:
            raise ApiError(400, f"Invalid value: {msg['role']!r}. Supported values are: "
                           + ", ".join(f"'{r}'" for r in ROLES) + ".", param=f"{where}.role",
                           code="invalid_value")
        content = msg.get("content")
        if content is None and msg["role"] != "assistant":  # assistant may carry tool_calls only
            raise missing(f"{where}.content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_type(f"{where}.content", content,
                           "one of a string or array of objects")
        words += len(_text_of(content).split()) + 4  # rough per-message overhead, like tiktoken
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_type("stream", stream, "a boolean")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is "
                       "enabled.", param="stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_type("stream_options", options, "an object")
    limits = [v for v in (number("max_tokens", "integer", 1),
                          number("max_completion_tokens", "integer", 1)) if v is not None]
    number("temperature", "decimal", 0, 2)
    number("top_p", "decimal", 0, 1)
    stop = body.get("stop")
    if not (stop is None or isinstance(stop, str)
            or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise bad_type("stop", stop, "one of a string or array of strings")
    return _Chat(body["model"], bool(stream), bool(options and options.get("include_usage")),
                 min(limits, default=None), words + 3)


def _wrong_key(key: str) -> ApiError:
    return ApiError(401, f"Incorrect API key provided: {_mask_key(key)}. You can find your API "
                    "key at https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _fault(model: str, key: str) -> ApiError | None:
    if model == "fault-401":
        return _wrong_key(key)
    if model == "fault-403":
        return ApiError(403, "You are not allowed to use this model.", code="permission_denied")
    if model == "fault-404":
        return ApiError(404, f"The model `{model}` does not exist or you do not have access "
                        "to it.", code="model_not_found")
    if model == "fault-429":
        limits = (("retry-after", "7"), ("x-ratelimit-limit-requests", "60"),
                  ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "7s"),
                  ("x-ratelimit-limit-tokens", "150000"),
                  ("x-ratelimit-remaining-tokens", "149000"), ("x-ratelimit-reset-tokens", "400ms"))
        return ApiError(429, f"Rate limit reached for {model} in organization org-test on "
                        "requests per min (RPM): Limit 60, Used 60, Requested 1. Please try "
                        "again in 7s.", type_="requests", code="rate_limit_exceeded",
                        headers=limits)
    if model == "fault-500":
        return ApiError(500, "The server had an error while processing your request.",
                        type_="server_error")
    if model == "fault-context":
        return ApiError(400, "This model's maximum context length is 4096 tokens. However, "
                        "your messages resulted in 5000 tokens. Please reduce the length of "
                        "the messages.", param="messages", code="context_length_exceeded")
    return None


class FaultServer(LoopbackServer):
    """See the module docstring. ``requests`` and ``disconnects`` are thread-safe snapshots."""

    thread_name = "openai-fault-server"
    start_error = "fault server failed to start"
    bad_request = ApiError

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 valid_keys: set[str] | None = None) -> None:
        super().__init__(host, port)
        self.valid_keys: set[str] = valid_keys if valid_keys is not None else {"sk-test"}
        self.client_disconnected = threading.Event()
        self._lock = threading.Condition()  # guards the two fields below; notified per request
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0

    # -- public, callable from any thread -------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        with self._lock:
            return self._disconnects

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were recorded."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._disconnects = 0
        self.client_disconnected.clear()

    # -- event loop side: hooks of LoopbackServer ------------------------------------------
    async def _read(self, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> _Request | None:
        return await _read_full(reader, writer)

    def _bad_request_answer(self, exc: Exception) -> bytes:
        assert isinstance(exc, ApiError)
        return _json_response(exc.status, exc.payload, _request_id(), True)

    def _record(self, req: _Request, conn: int) -> None:
        try:
            body = json.loads(req.raw_body) if req.raw_body else None
        except ValueError:
            body = None
        path = req.path.split("?", 1)[0]
        with self._lock:
            self._requests.append(RecordedRequest(req.method, path, dict(req.headers), body, conn))
            self._lock.notify_all()

    def _client_left(self) -> None:
        with self._lock:
            self._disconnects += 1
        self.client_disconnected.set()

    async def _respond(self, req: _Request, writer: asyncio.StreamWriter,
                       state: _Exchange) -> bool:
        rid = _request_id()
        try:
            payload = self._route(req)
        except ApiError as exc:
            writer.write(_json_response(exc.status, exc.payload, rid, exc.close, exc.headers))
            await writer.drain()
            return not exc.close
        if isinstance(payload, _Chat):
            return await _complete(payload, writer, state, rid)
        writer.write(_json_response(200, payload, rid, False))
        await writer.drain()
        return True

    def _route(self, req: _Request) -> Any:
        path = req.path.split("?", 1)[0]
        invalid_url = ApiError(404, f"Invalid URL ({req.method} {path})")
        if not path.startswith("/v1/"):
            raise invalid_url
        auth = req.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not key:
            raise ApiError(401, "You didn't provide an API key. You need to provide your API "
                           "key in an Authorization header using Bearer auth (i.e. "
                           "Authorization: Bearer YOUR_KEY).")
        if key not in self.valid_keys:
            raise _wrong_key(key)
        if req.method == "GET" and path == "/v1/models":
            return {"object": "list", "data": [_model_obj(name) for name in MODELS]}
        if req.method == "GET" and path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if name in MODELS or not name.startswith("fault-"):
                return _model_obj(name)
            raise ApiError(404, f"The model `{name}` does not exist or you do not have access "
                           "to it.", code="model_not_found")
        if req.method == "POST" and path == "/v1/chat/completions":
            try:
                body = json.loads(req.raw_body)
            except ValueError:
                body = None
            chat = _validate_chat(body)
            fault = _fault(chat.model, key)
            if fault is not None:
                raise fault
            return chat
        raise invalid_url


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": OWNER}


async def _forever() -> None:
    """A stalled response: ended only by the client leaving (watcher) or stop() (cancel)."""
    await asyncio.get_running_loop().create_future()


async def _complete(chat: _Chat, writer: asyncio.StreamWriter, state: _Exchange,
                    rid: str) -> bool:
    """Produce the completion for ``chat.model``; returns False when the connection must close."""
    model, cid, created = chat.model, f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    fast = model.startswith("fast-") and model[5:].isdigit()
    cut = model == "fault-cut"
    if fast:
        n = int(model[5:])
        pieces, delay = [FAST_TOKENS[i % len(FAST_TOKENS)] for i in range(n)], 0.0
    elif model in ("fault-cut", "fault-malformed", "fault-stall"):
        prefix, n = {"fault-cut": ("part", 10), "fault-malformed": ("good", 5),
                     "fault-stall": ("stall", 3)}[model]
        pieces, delay = [f"{prefix}{i} " for i in range(n)], 0.0
    else:
        count, delay = (500, 0.02) if model == "slow" else (40, 0.005)
        pieces = [f"word{i} " for i in range(count)]
    finish = "stop"
    if chat.max_tokens is not None and not fast and len(pieces) > chat.max_tokens:
        pieces, finish = pieces[: chat.max_tokens], "length"
    usage = {"prompt_tokens": chat.prompt_tokens, "completion_tokens": len(pieces),
             "total_tokens": chat.prompt_tokens + len(pieces)}
    state.in_flight = True

    if not chat.stream:
        if model == "fault-stall":
            await _forever()
        await asyncio.sleep(delay * len(pieces))
        message = {"role": "assistant", "content": "".join(pieces), "refusal": None,
                   "annotations": []}
        body = b'{"id": "broken", "choices": [' if model == "fault-malformed" else _dumps(
            {"id": cid, "object": "chat.completion", "created": created, "model": model,
             "choices": [{"index": 0, "message": message, "logprobs": None,
                          "finish_reason": finish}],
             "usage": usage, "system_fingerprint": None})
        headers = [("content-type", "application/json"), ("content-length", str(len(body))),
                   ("x-request-id", rid), ("connection", "keep-alive")]
        # fault-cut promises the whole body, delivers half of it and hangs up.
        writer.write(_head(200, headers) + (body[: len(body) // 2] if cut else body))
        state.in_flight = False
        await writer.drain()
        return not cut

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": None, "choices": [{"index": 0, "delta": delta,
                                                        "logprobs": None,
                                                        "finish_reason": finish_reason}]}
        if chat.include_usage:
            obj["usage"] = None  # OpenAI sends an explicit null until the final usage chunk
        return obj

    if model.startswith("delay-") and model[6:].isdigit():
        # A server that is still loading the model: headers come at once, the first token late.
        writer.write(_head(200, [("content-type", "text/event-stream; charset=utf-8"),
                                 ("transfer-encoding", "chunked"), ("cache-control", "no-cache"),
                                 ("x-request-id", rid), ("connection", "keep-alive")]))
        await writer.drain()
        await asyncio.sleep(int(model[6:]) / 1000)
        writer.write(_sse(chunk({"role": "assistant", "content": ""})))
    else:
        writer.write(_head(200, [("content-type", "text/event-stream; charset=utf-8"),
                                 ("transfer-encoding", "chunked"), ("cache-control", "no-cache"),
                                 ("x-request-id", rid), ("connection", "keep-alive")])
                     + _sse(chunk({"role": "assistant", "content": ""})))
    if fast:
        # Encode each distinct chunk once; a cycle of them is written in large batches.
        cycle = b"".join(_sse(chunk({"content": token})) for token in FAST_TOKENS)
        total, per_batch = len(pieces), 64  # cycles per write: 512 chunks
        full, rest = divmod(total, len(FAST_TOKENS))
        for start in range(0, full, per_batch):
            writer.write(cycle * min(per_batch, full - start))
            await writer.drain()
        if rest:
            writer.write(b"".join(_sse(chunk({"content": t})) for t in FAST_TOKENS[:rest]))
    else:
        for piece in pieces:
            if delay:
                await asyncio.sleep(delay)
            writer.write(_sse(chunk({"content": piece})))
            await writer.drain()
    if cut:
        state.in_flight = False  # the server hangs up: not a client disconnect
        return False
    if model == "fault-stall":
        await _forever()
    tail = _sse(chunk({}, finish))
    if model == "fault-malformed":
        tail = _frame(b'data: {"id": "broken", "choices": [\n\n')
    if chat.include_usage and model != "fault-malformed":
        final = chunk({})
        final["choices"], final["usage"] = [], usage
        tail += _sse(final)
    # [DONE] and the zero-length terminating chunk go out in a single write.
    writer.write(tail + _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    state.in_flight = False
    await writer.drain()
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible fault-injection server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    run_main(FaultServer(port=args.port))


if __name__ == "__main__":
    main()
