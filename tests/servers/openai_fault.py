"""A strict loopback server speaking the OpenAI Chat Completions wire format, with faults.

HTTP/1.1 is written by hand on top of ``asyncio.start_server`` so that tests control every
byte: chunked transfer-encoding for SSE, abrupt connection cuts and stalled streams.
The requested model name picks the behaviour (see ``MODELS``). Use it in-process::

    with FaultServer() as server:          # or: base_url = server.start(); ...; server.stop()
        base_url = server.base_url          # http://127.0.0.1:PORT/v1

or as a subprocess: ``python -m tests.servers.openai_fault [--port N]`` prints ``PORT=<n>``
as its first stdout line and serves until SIGTERM/SIGINT. Content parts are checked in
``openai_parts``.
Tests read what arrived from ``requests`` (the parsed body).

Only the standard library is imported, so the subprocess starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.servers import tool_calls
from tests.servers._fault import (
    FaultServerBase,
    dumps,
    forever,
    json_answer,
    sse,
    stream_head,
    text_of,
    write_whole,
)
from tests.servers._http import Exchange as _Exchange
from tests.servers._http import (
    HttpError,
    Request,
    end_chunked,
    frame,
    parse_json,
    run_main,
    send,
)
from tests.servers.openai_parts import ApiError, _check_parts, _json_type

MODELS: dict[str, str] = {
    "ok": "40 word chunks, ~5 ms apart (also used for any unlisted model name)",
    "no-usage": "as ok, but stream_options.include_usage is ignored, as servers older than it do",
    "tools-2": "as ok, but with tools offered it calls them in two replies in a row (see tool_calls.py)",
    "slow": "500 word chunks, 20 ms apart",
    "fast-20000": "fast-<N>: N one-token chunks written as fast as possible",
    "fast-5000": "the same with 5,000 chunks (four at once in benchmarks/compare.py)",
    "o3-mini": "as ok: a real model's name, which LiteLLM's map says takes no images",
    "fault-401": "401 invalid_api_key",
    "fault-403": "403 permission_denied",
    "fault-404": "404 model_not_found",
    "fault-429": "429 rate_limit_exceeded, retry-after: 7",
    "fault-500": "500 server_error",
    "fault-context": "400 context_length_exceeded",
    "fault-cut": "10 chunks, then the socket is closed mid-stream",
    "fault-malformed": "5 chunks, an invalid JSON event, then [DONE]",
    "fault-stall": "3 chunks, then silence until the client leaves",
    "fault-stream-401": "2 chunks, then an error event (invalid_api_key) inside the 200 stream",
    "delay-2500": "delay-<ms>: headers at once, the first token <ms> later (a model loading)",
    "paced-100": "paced-<N>: 200 word chunks at N a second, on a fixed schedule (a model's steady rate)",
    "fault-bidi": "text with a right-to-left override: shown as is, “gpj.exe” reads “exe.jpg”",
    "reasoner": "reasoning_content chunks, then the answer; usage has completion_tokens_details.reasoning_tokens",
    "json-person": 'the JSON object {"name": "Ada", "age": "36"} in chunks (age a string)',
    "json-broken": 'JSON cut short: {"name": "Ada",',
    "gpt-4o-mini": "as ok, with OpenAI's automatic prompt caching: usage.prompt_tokens_details.cached_tokens is"
    " the longest run of leading messages seen before, once it reaches 1,024 tokens, in steps of 128",
    "flaky-2-429": "flaky-<n>-<status>: the first n requests for this name fail with <status> (429 or 5xx) and"
    " the server's retry_after header (seconds or an HTTP date), then it answers as ok",
}
# OpenAI caches prompts of 1,024 tokens or more, in 128-token steps (platform.openai.com/docs/guides/prompt-caching).
MIN_CACHED_TOKENS, CACHE_STEP = 1024, 128
# DeepSeek's reasoning models stream `delta.reasoning_content` before `delta.content` and count the
# reasoning in usage.completion_tokens_details.reasoning_tokens (api-docs.deepseek.com/guides/reasoning_model,
# /api/create-chat-completion); llama-server sends the same field (its --reasoning-format deepseek).
REASONING_PIECES = ("The user ", "greets me; ", "a short ", "answer suits.")
JSON_PIECES = {"json-person": ('{"name": ', '"Ada", ', '"age": "36"}'), "json-broken": ('{"name": ', '"Ada",')}
BIDI_PIECES = ("Open ", "\u202egpj.exe", "\u202c", " now")
OWNER = "modeldesk-test"
# fast-N cycles through a few distinct tokens: LiteLLM cuts a stream whose chunks repeat one text
# 100 times in a row (its guard against a looping model), and real text does not do that.
FAST_TOKENS = tuple(f"t{i} " for i in range(8))
# Every parameter the real endpoint accepts; anything else is rejected like OpenAI does.
CHAT_PARAMS = frozenset(
    {
        "messages",
        "model",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
ROLES = ("system", "user", "assistant", "tool", "function", "developer")


# Content part types of a user message; system/developer messages take text parts only.
def _mask_key(key: str) -> str:
    # OpenAI shows only the ends of a wrong key; short keys reveal almost nothing.
    return f"{key[:4]}***{key[-4:]}" if len(key) > 12 else f"{key[:2]}***"


def _json_response(
    status: int, payload: Any, request_id: str, *, close: bool = False, extra: tuple[tuple[str, str], ...] = ()
) -> bytes:
    return json_answer(status, payload, [("x-request-id", request_id), *extra], close=close)


@dataclass
class _Chat:
    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None
    prompt_tokens: int
    tool_calls: list[tool_calls.PlannedCall] = field(default_factory=list)  # this reply's (see tool_calls.py)
    tool_results: list[str] = field(default_factory=list)  # the results the request ends with
    prefixes: list[tuple[str, int]] = field(default_factory=list)  # (hash, tokens) of each run of leading messages
    cached_tokens: int | None = None  # set for the model with prompt caching


def _prefixes(messages: list[Any]) -> list[tuple[str, int]]:
    digest, tokens, out = hashlib.sha256(), 3, []
    for message in messages:
        digest.update(dumps(message))
        tokens += len(text_of(message.get("content")).split()) + 4
        out.append((digest.copy().hexdigest(), tokens))
    return out


def _validate_chat(body: Any) -> _Chat:
    """Reject what OpenAI rejects, with its messages, params and codes."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The OpenAI API "
            "expects a JSON payload, but what was sent was not valid JSON.",
        )
    if unknown := sorted(set(body) - CHAT_PARAMS):
        raise ApiError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}")

    def missing(name: str) -> ApiError:
        return ApiError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")

    def bad_type(name: str, value: Any, expected: str) -> ApiError:
        return ApiError(
            400,
            f"Invalid type for '{name}': expected {expected}, but got {_json_type(value)} instead.",
            param=name,
            code="invalid_type",
        )

    def number(name: str, kind: str, low: float, high: float | None = None) -> Any:
        value = body.get(name)
        if value is None:
            return None
        types = (int,) if kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, types):
            raise bad_type(name, value, f"an {kind}" if kind == "integer" else f"a {kind}")
        if high is None and value < low:
            raise ApiError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        if high is not None and not low <= value <= high:
            raise ApiError(
                400,
                f"Invalid '{name}': decimal out of range. Expected a value "
                f"between {low} and {high}, but got {value} instead.",
                param=name,
                code="decimal_out_of_range",
            )
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
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    words = 0
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise bad_type(where, msg, "an object")
        if "role" not in msg:
            raise missing(f"{where}.role")
        if msg["role"] not in ROLES:
            raise ApiError(
                400,
                f"Invalid value: {msg['role']!r}. Supported values are: " + ", ".join(f"'{r}'" for r in ROLES) + ".",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = msg.get("content")
        if content is None and msg["role"] != "assistant":  # assistant may carry tool_calls only
            raise missing(f"{where}.content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_type(f"{where}.content", content, "one of a string or array of objects")
        if isinstance(content, list):
            _check_parts(content, f"{where}.content", msg["role"])
        words += len(text_of(content).split()) + 4  # rough per-message overhead, like tiktoken
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_type("stream", stream, "a boolean")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise ApiError(
            400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    if options is not None and not isinstance(options, dict):
        raise bad_type("stream_options", options, "an object")
    limits = [
        v for v in (number("max_tokens", "integer", 1), number("max_completion_tokens", "integer", 1)) if v is not None
    ]
    number("temperature", "decimal", 0, 2)
    number("top_p", "decimal", 0, 1)
    stop = body.get("stop")
    if not (
        stop is None or isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise bad_type("stop", stop, "one of a string or array of strings")
    try:  # "tools-<n>": calls in n replies in a row before an answer in words
        offered = tool_calls.check_openai(body)
    except tool_calls.ToolRefusal as exc:
        raise ApiError(400, exc.message, param=exc.param) from None
    rounds = int(body["model"][6:]) if body["model"].startswith("tools-") and body["model"][6:].isdigit() else 1
    return _Chat(
        body["model"],
        bool(stream),
        bool(options and options.get("include_usage")) and body["model"] != "no-usage",
        min(limits, default=None),
        words + 3,
        tool_calls.openai_plan(body, offered, rounds),
        tool_calls.openai_results(messages),
        _prefixes(messages),
    )


def _wrong_key(key: str) -> ApiError:
    return ApiError(
        401,
        f"Incorrect API key provided: {_mask_key(key)}. You can find your API "
        "key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _fault(model: str, key: str) -> ApiError | None:
    if model == "fault-401":
        return _wrong_key(key)
    if model == "fault-403":
        return ApiError(403, "You are not allowed to use this model.", code="permission_denied")
    if model == "fault-404":
        return ApiError(
            404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
        )
    if model == "fault-429":
        limits = (
            ("retry-after", "7"),
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "7s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "149000"),
            ("x-ratelimit-reset-tokens", "400ms"),
        )
        return ApiError(
            429,
            f"Rate limit reached for {model} in organization org-test on "
            "requests per min (RPM): Limit 60, Used 60, Requested 1. Please try "
            "again in 7s.",
            type_="requests",
            code="rate_limit_exceeded",
            headers=limits,
        )
    if model == "fault-500":
        return ApiError(500, "The server had an error while processing your request.", type_="server_error")
    if model == "fault-context":
        return ApiError(
            400,
            "This model's maximum context length is 4096 tokens. However, "
            "your messages resulted in 5000 tokens. Please reduce the length of "
            "the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    return None


class FaultServer(FaultServerBase):
    """See the module docstring. ``requests`` and ``disconnects`` are thread-safe snapshots."""

    thread_name = "openai-fault-server"
    start_error = "fault server failed to start"
    default_keys = ("sk-test",)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, valid_keys: set[str] | None = None) -> None:
        super().__init__(host, port, valid_keys)
        # What flaky-<n>-<status> sends as retry-after (None: no such header); may be changed at any time.
        self.retry_after: str | None = "1"
        self._flaky: dict[str, int] = {}  # model -> requests so far; guarded by _lock
        self._seen: set[str] = set()  # prompt prefixes seen (the cache); guarded by _lock

    def _flaky_fault(self, model: str) -> ApiError | None:
        found = re.fullmatch(r"flaky-(\d+)-(\d{3})", model)
        if found is None:
            return None
        with self._lock:
            count = self._flaky[model] = self._flaky.get(model, 0) + 1
        if count > int(found.group(1)):
            return None
        status = int(found.group(2))
        message = "Rate limit reached." if status == 429 else "The server is overloaded."
        limited = status == 429
        return ApiError(
            status,
            message,
            type_="requests" if limited else "server_error",
            code="rate_limit_exceeded" if limited else None,
            headers=(("retry-after", self.retry_after),) if self.retry_after is not None else (),
        )

    def _cache(self, chat: _Chat) -> None:
        with self._lock:
            hits = [t for h, t in chat.prefixes[:-1] if h in self._seen and t >= MIN_CACHED_TOKENS]
            self._seen.update(h for h, _t in chat.prefixes)
        chat.cached_tokens = max(hits, default=0) // CACHE_STEP * CACHE_STEP

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- event loop side: hooks of LoopbackServer ------------------------------------------
    def _bad_request_answer(self, exc: Exception) -> bytes:
        assert isinstance(exc, HttpError)
        payload = ApiError(exc.status, str(exc)).payload
        return _json_response(exc.status, payload, _request_id(), close=True)

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: _Exchange) -> bool:
        rid = _request_id()
        try:
            payload = self._route(req)
        except ApiError as exc:
            return await send(writer, _json_response(exc.status, exc.payload, rid, extra=exc.headers))
        if isinstance(payload, _Chat):
            return await _complete(payload, writer, state, rid)
        return await send(writer, _json_response(200, payload, rid))

    def _route(self, req: Request) -> Any:
        path = req.path.split("?", 1)[0]
        invalid_url = ApiError(404, f"Invalid URL ({req.method} {path})")
        if not path.startswith("/v1/"):
            raise invalid_url
        auth = req.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not key:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API "
                "key in an Authorization header using Bearer auth (i.e. "
                "Authorization: Bearer YOUR_KEY).",
            )
        if key not in self.valid_keys:
            raise _wrong_key(key)
        if req.method == "GET" and path == "/v1/models":
            return {"object": "list", "data": [_model_obj(name) for name in MODELS]}
        if req.method == "GET" and path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if name in MODELS or not name.startswith("fault-"):
                return _model_obj(name)
            raise ApiError(
                404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found"
            )
        if req.method == "POST" and path == "/v1/chat/completions":
            chat = _validate_chat(parse_json(req.raw_body))
            fault = _fault(chat.model, key) or self._flaky_fault(chat.model)
            if fault is not None:
                raise fault
            if chat.model == "gpt-4o-mini":
                self._cache(chat)
            return chat
        raise invalid_url


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": OWNER}


async def _complete(chat: _Chat, writer: asyncio.StreamWriter, state: _Exchange, rid: str) -> bool:
    """Produce the completion for ``chat.model``; returns False when the connection must close."""
    model, cid, created = chat.model, f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    fast = model.startswith("fast-") and model[5:].isdigit()
    paced = model.startswith("paced-") and model[6:].isdigit() and int(model[6:]) > 0
    cut = model == "fault-cut"
    if fast:
        n = int(model[5:])
        pieces, delay = [FAST_TOKENS[i % len(FAST_TOKENS)] for i in range(n)], 0.0
    elif model == "fault-bidi":
        pieces, delay = list(BIDI_PIECES), 0.0
    elif model in ("fault-cut", "fault-malformed", "fault-stall", "fault-stream-401"):
        prefix, n = {
            "fault-cut": ("part", 10),
            "fault-malformed": ("good", 5),
            "fault-stall": ("stall", 3),
            "fault-stream-401": ("auth", 2),
        }[model]
        pieces, delay = [f"{prefix}{i} " for i in range(n)], 0.0
    elif paced:
        pieces, delay = [f"word{i} " for i in range(200)], 1 / int(model[6:])
    elif model in JSON_PIECES:
        pieces, delay = list(JSON_PIECES[model]), 0.0
    else:
        count, delay = (500, 0.02) if model == "slow" else (40, 0.005)
        pieces = [f"word{i} " for i in range(count)]
    if chat.tool_results:
        pieces = [f"Tool said: {result} " for result in chat.tool_results]
    if chat.tool_calls:  # counted as output, one token each
        pieces = [call.arguments for call in chat.tool_calls]
    finish = "stop"
    if chat.max_tokens is not None and not fast and len(pieces) > chat.max_tokens:
        pieces, finish = pieces[: chat.max_tokens], "length"
    usage = {
        "prompt_tokens": chat.prompt_tokens,
        "completion_tokens": len(pieces),
        "total_tokens": chat.prompt_tokens + len(pieces),
    }
    if chat.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": chat.cached_tokens, "audio_tokens": 0}
    reasoning = REASONING_PIECES if model == "reasoner" else ()
    if reasoning:
        usage["completion_tokens"] += len(reasoning)
        usage["total_tokens"] += len(reasoning)
        usage["completion_tokens_details"] = {"reasoning_tokens": len(reasoning)}
    state.in_flight = True

    if not chat.stream:
        if model == "fault-stall":
            await forever()
        await asyncio.sleep(delay * len(pieces))
        message = {"role": "assistant", "content": "".join(pieces), "refusal": None, "annotations": []}
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        body = (
            b'{"id": "broken", "choices": ['
            if model == "fault-malformed"
            else dumps(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                    "system_fingerprint": None,
                }
            )
        )
        return await write_whole(writer, state, body, [("x-request-id", rid)], cut=cut)

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        obj = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if chat.include_usage:
            obj["usage"] = None  # OpenAI sends an explicit null until the final usage chunk
        return obj

    if model.startswith("delay-") and model[6:].isdigit():
        # A server that is still loading the model: headers come at once, the first token late.
        writer.write(stream_head([("x-request-id", rid)]))
        await writer.drain()
        await asyncio.sleep(int(model[6:]) / 1000)
        writer.write(sse(chunk({"role": "assistant", "content": ""})))
    else:
        writer.write(stream_head([("x-request-id", rid)]) + sse(chunk({"role": "assistant", "content": ""})))
    if chat.tool_calls:
        for delta in tool_calls.openai_deltas(chat.tool_calls):
            writer.write(sse(chunk(delta)))
            await writer.drain()
        finish = "tool_calls"
    elif fast:
        # Encode each distinct chunk once; a cycle of them is written in large batches.
        cycle = b"".join(sse(chunk({"content": token})) for token in FAST_TOKENS)
        total, per_batch = len(pieces), 64  # cycles per write: 512 chunks
        full, rest = divmod(total, len(FAST_TOKENS))
        for start in range(0, full, per_batch):
            writer.write(cycle * min(per_batch, full - start))
            await writer.drain()
        if rest:
            writer.write(b"".join(sse(chunk({"content": t})) for t in FAST_TOKENS[:rest]))
    elif paced:
        # Each chunk is due at i / N seconds after the first: late wake-ups do not add up.
        begun = time.monotonic()
        for i, piece in enumerate(pieces, start=1):
            await asyncio.sleep(max(0.0, begun + i * delay - time.monotonic()))
            writer.write(sse(chunk({"content": piece})))
            await writer.drain()
    else:
        for thought in reasoning:
            writer.write(sse(chunk({"content": None, "reasoning_content": thought})))
            await writer.drain()
        for piece in pieces:
            if delay:
                await asyncio.sleep(delay)
            writer.write(sse(chunk({"content": piece})))
            await writer.drain()
    if cut:
        state.in_flight = False  # the server hangs up: not a client disconnect
        return False
    if model == "fault-stall":
        await forever()
    if model == "fault-stream-401":
        # Gateways that check the key late report it in the stream: OpenAI's SDK raises any
        # event carrying "error" as an APIError with that body and no status.
        error = ApiError(401, "This API key has been revoked.", code="invalid_api_key").payload
        return await end_chunked(writer, state, sse(error) + frame(b"data: [DONE]\n\n"))
    tail = sse(chunk({}, finish))
    if model == "fault-malformed":
        tail = frame(b'data: {"id": "broken", "choices": [\n\n')
    if chat.include_usage and model != "fault-malformed":
        final = chunk({})
        final["choices"], final["usage"] = [], usage
        tail += sse(final)
    # [DONE] and the zero-length terminating chunk go out in a single write.
    return await end_chunked(writer, state, tail + frame(b"data: [DONE]\n\n"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible fault-injection server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    run_main(FaultServer(port=args.port))


if __name__ == "__main__":
    main()
