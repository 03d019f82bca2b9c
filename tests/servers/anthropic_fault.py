"""A strict loopback server speaking the Anthropic Messages API wire format, with per-key faults.

HTTP/1.1 is written by hand on top of ``asyncio.start_server`` (the helpers are shared with
``openai_fault``, in ``_http`` and ``_fault``) so that tests control every byte: chunked SSE,
abrupt cuts and stalled streams.
Each API key is one account: ``behaviour[key]`` picks what that account's ``POST /v1/messages``
does (see ``BEHAVIOURS``), so two keys on one server can fail differently::

    with AnthropicServer() as server:       # or: base = server.start(); ...; server.stop()
        server.behaviour["sk-ant-test-a"] = "429"
        litellm.acompletion(model="anthropic/claude-sonnet-4-5", api_base=server.base_url,
                            api_key="sk-ant-test-b", ...)

``base_url`` is ``http://127.0.0.1:PORT`` without ``/v1``: LiteLLM appends ``/v1/messages`` to
an anthropic ``api_base``. Every answer to a known key carries ``request-id``,
``anthropic-organization-id`` and the ``anthropic-ratelimit-*`` headers (RFC 3339 resets, the
remaining counts go down with each request of that key); an unknown or missing key gets a 401
with only ``request-id``, since it belongs to no organization.

Also runnable as a subprocess: ``python -m tests.servers.anthropic_fault [--port N]
[--key KEY ...] [--behave KEY=BEHAVIOUR ...]`` prints ``PORT=<n>`` as its first stdout line and
serves until SIGTERM/SIGINT. Only the standard library is imported. Content blocks are checked
in ``anthropic_blocks``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from tests.servers import tool_calls
from tests.servers._fault import (
    FaultServerBase,
    Headers,
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
    parse_json,
    run_main,
    send,
)
from tests.servers.anthropic_blocks import AnthropicError, _check_block, _invalid, count_breakpoints

BEHAVIOURS: dict[str, str] = {
    "ok": "20 text deltas, ~2 ms apart (the default for every key)",
    "slow": "200 text deltas, 20 ms apart",
    "cut-after-text": "message_start and 3 text deltas, then the socket is closed",
    "stall": "message_start, then silence until the client leaves",
    "401": "401 authentication_error (a revoked key; applies to every endpoint)",
    "429": "429 rate_limit_error with retry-after: <retry_after>",
    "529": "529 overloaded_error",
    "500": "500 api_error",
}
DEFAULT_KEYS = ("sk-ant-test-a", "sk-ant-test-b")
OK_PIECES = tuple(f"w{i} " for i in range(20))
SLOW_PIECES = tuple(f"s{i} " for i in range(200))
CUT_PIECES = tuple(f"cut{i} " for i in range(3))
# With extended thinking on, a thinking block (its deltas, then its signature) comes before the text.
THINKING_PIECES = tuple(f"think{i} " for i in range(3))
THINKING_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
MIN_THINKING_BUDGET = 1024
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
# Newest first, as the Models API lists them.
MODELS: tuple[tuple[str, str, str], ...] = (
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
)
# Every top-level field of the Messages API (anthropic-sdk-python MessageCreateParams).
MESSAGE_PARAMS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "inference_geo",
        "output_config",
        "cache_control",
    }
)
ROLES = ("user", "assistant")
REQUESTS_LIMIT = 50
INPUT_TOKENS_LIMIT = 30_000
OUTPUT_TOKENS_LIMIT = 8_000
WINDOW = 60  # seconds until an unused bucket is full again
# Prompt caching: a prefix shorter than this is not cached (Anthropic's minimum for Sonnet and Opus;
# tokens are counted here as words). The cache is the organization's, as Anthropic's is.
MIN_CACHEABLE_TOKENS = 1024


def organization_id(key: str) -> str:
    """The ``anthropic-organization-id`` every answer to ``key`` carries: a UUID, as Anthropic sends."""
    return str(uuid.UUID(hashlib.sha256(key.encode()).hexdigest()[:32]))


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _request_id() -> str:
    return "req_011" + uuid.uuid4().hex[:21]


def _json_answer(status: int, payload: Any, headers: Headers, close: bool) -> bytes:
    # 529 is Anthropic's own status (not in http.HTTPStatus).
    return json_answer(status, payload, headers, close=close, reason="Overloaded" if status == 529 else None)


def _event(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event (``event:`` and ``data:`` lines) in one HTTP chunk."""
    return sse(data, event=name)


def _json_kind(value: Any) -> str:
    for kind, name in (
        (bool, "a valid boolean"),
        (int, "a valid integer"),
        (float, "a valid number"),
        (str, "a valid string"),
        (list, "a valid list"),
        (dict, "a valid dictionary"),
    ):
        if isinstance(value, kind):
            return name
    return "null"


@dataclass
class _Message:
    model: str
    stream: bool
    max_tokens: int
    stop_sequences: tuple[str, ...]
    input_tokens: int
    thinking: bool = False
    tool_calls: list[tool_calls.PlannedCall] = field(default_factory=list)  # this reply's (see tool_calls.py)
    tool_results: list[str] = field(default_factory=list)  # the results the request ends with
    breakpoints: int = 0  # blocks with cache_control
    cache_points: list[tuple[str, int]] = field(default_factory=list)  # (prefix hash, tokens) per breakpoint
    cache_read: int = 0  # set when the request is answered
    cache_write: int = 0


def _cache_points(body: dict[str, Any]) -> list[tuple[str, int]]:
    """Each breakpoint's prefix (tools, system, messages up to the marked block, markers left out)
    as a hash, and its length in tokens (words, as input_tokens counts them)."""
    digest = hashlib.sha256(dumps(body.get("tools") or []))
    tokens = 4
    points: list[tuple[str, int]] = []

    def add(block: Any, words: int) -> None:
        nonlocal tokens
        tokens += words
        unmarked = {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block
        digest.update(dumps(unmarked))
        if isinstance(block, dict) and "cache_control" in block:
            points.append((digest.copy().hexdigest(), tokens))

    system = body.get("system")
    for block in system if isinstance(system, list) else ([system] if system else []):
        add(block, len(text_of(block if isinstance(block, str) else [block]).split()))
    for message in body["messages"]:
        content = message["content"]
        digest.update(message["role"].encode())
        blocks = content if isinstance(content, list) else [content]
        for position, block in enumerate(blocks):
            add(block, len(text_of(block if isinstance(block, str) else [block]).split()) + (3 if position == 0 else 0))
    return points


def _validate_messages(body: Any) -> _Message:
    """Reject what the Messages API rejects, with its pydantic-style messages."""
    if not isinstance(body, dict):
        raise _invalid("The request body is not valid JSON.")
    if unknown := sorted(set(body) - MESSAGE_PARAMS):
        raise _invalid(f"{unknown[0]}: Extra inputs are not permitted")
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            raise _invalid(f"{name}: Field required")

    def expect(name: str, value: Any, ok: bool, kind: str) -> None:
        if not ok:
            raise _invalid(f"{name}: Input should be {kind}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    expect("model", body["model"], isinstance(body["model"], str), "a valid string")
    max_tokens = body["max_tokens"]
    expect("max_tokens", max_tokens, is_int(max_tokens), "a valid integer")
    if max_tokens < 0:
        raise _invalid("max_tokens: Input should be greater than or equal to 0")
    messages = body["messages"]
    expect("messages", messages, isinstance(messages, list), "a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    words = 0
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        expect(where, msg, isinstance(msg, dict), "a valid dictionary")
        if unknown := sorted(set(msg) - {"role", "content"}):
            raise _invalid(f"{where}.{unknown[0]}: Extra inputs are not permitted")
        for name in ("role", "content"):
            if name not in msg:
                raise _invalid(f"{where}.{name}: Field required")
        if msg["role"] not in ROLES:
            raise _invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        content = msg["content"]
        expect(f"{where}.content", content, isinstance(content, (str, list)), "a valid string or a valid list")
        if isinstance(content, list):
            for j, block in enumerate(content):
                expect(
                    f"{where}.content.{j}",
                    block,
                    isinstance(block, dict) and isinstance(block.get("type"), str),
                    "a content block object with a 'type'",
                )
                _check_block(block, f"{where}.content.{j}")
        only_text = isinstance(content, str) or all(b["type"] == "text" for b in content)
        final_assistant = i == len(messages) - 1 and msg["role"] == "assistant"
        if only_text and not text_of(content).strip() and not final_assistant:
            raise _invalid(
                f"{where}: all messages must have non-empty content except for the optional final assistant message"
            )
        words += len(text_of(content).split()) + 3
    system = body.get("system")
    if system is not None:
        expect(
            "system",
            system,
            isinstance(system, str)
            or (
                isinstance(system, list)
                and all(
                    isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in system
                )
            ),
            "a valid string or a list of text blocks",
        )
        for j, block in enumerate(system if isinstance(system, list) else []):
            _check_block(block, f"system.{j}")
        words += len(text_of(system).split())
    breakpoints = count_breakpoints(body)
    stream = body.get("stream", False)
    expect("stream", stream, isinstance(stream, bool), "a valid boolean")
    for name, high in (("temperature", 1), ("top_p", 1)):
        if name in body:
            value = body[name]
            expect(name, value, is_number(value), "a valid number")
            if value < 0:
                raise _invalid(f"{name}: Input should be greater than or equal to 0")
            if value > high:
                raise _invalid(f"{name}: Input should be less than or equal to {high}")
    if "top_k" in body:
        expect(
            "top_k",
            body["top_k"],
            is_int(body["top_k"]) and body["top_k"] >= 0,
            "a valid integer greater than or equal to 0",
        )
    stops = body.get("stop_sequences", [])
    expect(
        "stop_sequences",
        stops,
        isinstance(stops, list) and all(isinstance(s, str) for s in stops),
        "a valid list of strings",
    )
    metadata = body.get("metadata", {})
    expect("metadata", metadata, isinstance(metadata, dict), "a valid dictionary")
    if unknown := sorted(set(metadata) - {"user_id"}):
        raise _invalid(f"metadata.{unknown[0]}: Extra inputs are not permitted")
    if metadata.get("user_id") is not None:
        expect("metadata.user_id", metadata["user_id"], isinstance(metadata["user_id"], str), "a valid string")
    thinking = _validate_thinking(body, max_tokens)
    try:  # "claude-…-tools-<n>": calls in n replies in a row before an answer in words
        offered = tool_calls.check_anthropic(body)
    except tool_calls.ToolRefusal as exc:
        raise _invalid(exc.message) from None
    head, _, rounds = body["model"].rpartition("-tools-")
    plan = tool_calls.anthropic_plan(body, offered, int(rounds) if head and rounds.isdigit() else 1)
    return _Message(
        body["model"],
        stream,
        max_tokens,
        tuple(s for s in stops if s),
        words + 4,
        thinking,
        plan,
        tool_calls.anthropic_results(messages),
        breakpoints,
        _cache_points(body) if breakpoints else [],
    )


def _validate_thinking(body: dict[str, Any], max_tokens: int) -> bool:
    """Whether extended thinking is on; what its documentation says it refuses is refused."""
    thinking = body.get("thinking")
    if thinking is None:
        return False
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        raise _invalid(
            "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled'"
        )
    if thinking["type"] == "disabled":
        if unknown := sorted(set(thinking) - {"type"}):
            raise _invalid(f"thinking.disabled.{unknown[0]}: Extra inputs are not permitted")
        return False
    if unknown := sorted(set(thinking) - {"type", "budget_tokens"}):
        raise _invalid(f"thinking.enabled.{unknown[0]}: Extra inputs are not permitted")
    budget = thinking.get("budget_tokens")
    if budget is None:
        raise _invalid("thinking.enabled.budget_tokens: Field required")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _invalid("thinking.enabled.budget_tokens: Input should be a valid integer")
    if budget < MIN_THINKING_BUDGET:
        raise _invalid(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
        )
    if max_tokens <= budget:
        raise _invalid(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
            f"{THINKING_DOCS}#max-tokens-and-context-window-size"
        )
    compatibility = f"Please consult our documentation at {THINKING_DOCS}#feature-compatibility"
    if "temperature" in body and body["temperature"] != 1:
        raise _invalid(f"`temperature` may only be set to 1 when thinking is enabled. {compatibility}")
    if "top_k" in body:
        raise _invalid(f"`top_k` may not be set when thinking is enabled. {compatibility}")
    if "top_p" in body and body["top_p"] < 0.95:
        raise _invalid(
            f"`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. {compatibility}"
        )
    return True


def _plan(pieces: tuple[str, ...], msg: _Message) -> tuple[list[str], str, str | None]:
    """The text deltas actually sent, the stop_reason and the matched stop sequence."""
    out: list[str] = []
    text = ""
    for piece in pieces:
        if len(out) == msg.max_tokens:
            return out, "max_tokens", None
        for seq in msg.stop_sequences:
            at = (text + piece).find(seq)
            if at != -1:
                kept = (text + piece)[len(text) : max(at, len(text))]
                return out + ([kept] if kept else []), "stop_sequence", seq
        out.append(piece)
        text += piece
    return out, "end_turn", None


def _model_obj(model_id: str, display_name: str, created_at: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": created_at}


class _Behaviours(dict[str, str]):
    """key -> behaviour; a misspelt behaviour fails where the test sets it."""

    def __setitem__(self, key: str, value: str) -> None:
        if value not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {value!r}; expected one of {list(BEHAVIOURS)}")
        super().__setitem__(key, value)


@dataclass
class _Account:
    """Per-key rate-limit bookkeeping, guarded by the server's lock."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class AnthropicServer(FaultServerBase):
    """See the module docstring. ``requests``, ``counts`` and ``disconnects`` are snapshots.

    ``behaviour`` (key -> one of ``BEHAVIOURS``, default ``"ok"``), ``retry_after`` (seconds)
    and ``valid_keys`` may be changed from the test thread at any time.
    """

    thread_name = "anthropic-fault-server"
    start_error = "anthropic fault server failed to start"
    default_keys = DEFAULT_KEYS

    def __init__(self, host: str = "127.0.0.1", port: int = 0, valid_keys: set[str] | None = None) -> None:
        super().__init__(host, port, valid_keys)
        self.behaviour: dict[str, str] = _Behaviours()
        self.retry_after = 7
        self._accounts: dict[str, _Account] = {}  # guarded by _lock
        self._caches: dict[str, set[str]] = {}  # organization -> cached prefix hashes; guarded by _lock

    # -- public, callable from any thread -------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """Requests received per presented ``x-api-key`` (valid or not)."""
        with self._lock:
            return {key: account.requests for key, account in self._accounts.items()}

    def reset(self) -> None:
        """Forget recorded requests, counts (rate-limit budgets refill) and disconnects."""
        with self._lock:  # reentrant: the whole reset is one step for other threads
            self._accounts.clear()
            self._caches.clear()
            super().reset()

    def _use_cache(self, organization: str, msg: _Message) -> None:
        """Read the longest cached prefix, write the longest cacheable one; the rest is plain input."""
        with self._lock:
            cache = self._caches.setdefault(organization, set())
            read = max((tokens for digest, tokens in msg.cache_points if digest in cache), default=0)
            cacheable = [(d, t) for d, t in msg.cache_points if t >= MIN_CACHEABLE_TOKENS]
            top = max((t for _d, t in cacheable), default=0)
            cache.update(d for d, _t in cacheable)
        msg.cache_read, msg.cache_write = read, max(0, top - read)
        msg.input_tokens -= msg.cache_read + msg.cache_write

    # -- event loop side: hooks of LoopbackServer ------------------------------------------
    def _bad_request_answer(self, exc: Exception) -> bytes:
        """Malformed HTTP, answered in Anthropic's shape."""
        assert isinstance(exc, HttpError)
        rid = _request_id()
        error = AnthropicError(exc.status, "invalid_request_error", str(exc))
        return _json_answer(exc.status, error.body(rid), [("request-id", rid)], True)

    def _account_headers(
        self, key: str, msg: _Message | None, planned_output: int, *, limited: bool
    ) -> list[tuple[str, str]]:
        """Charge ``msg``'s tokens to ``key``; its organization and rate-limit headers."""
        now = time.time()
        with self._lock:
            account = self._accounts.setdefault(key, _Account())
            if msg is not None and not limited:
                account.input_tokens += msg.input_tokens
                account.output_tokens += planned_output
            used_requests = account.requests
            used_in, used_out = account.input_tokens, account.output_tokens
        requests_left = 0 if limited else max(0, REQUESTS_LIMIT - used_requests)
        requests_reset = now + self.retry_after if limited else now + WINDOW
        in_left = max(0, INPUT_TOKENS_LIMIT - used_in)
        out_left = max(0, OUTPUT_TOKENS_LIMIT - used_out)
        tokens_reset = _rfc3339(now + WINDOW)
        return [
            ("anthropic-organization-id", organization_id(key)),
            ("anthropic-ratelimit-requests-limit", str(REQUESTS_LIMIT)),
            ("anthropic-ratelimit-requests-remaining", str(requests_left)),
            ("anthropic-ratelimit-requests-reset", _rfc3339(requests_reset)),
            ("anthropic-ratelimit-tokens-limit", str(INPUT_TOKENS_LIMIT + OUTPUT_TOKENS_LIMIT)),
            ("anthropic-ratelimit-tokens-remaining", str(in_left + out_left)),
            ("anthropic-ratelimit-tokens-reset", tokens_reset),
            ("anthropic-ratelimit-input-tokens-limit", str(INPUT_TOKENS_LIMIT)),
            ("anthropic-ratelimit-input-tokens-remaining", str(in_left)),
            ("anthropic-ratelimit-input-tokens-reset", tokens_reset),
            ("anthropic-ratelimit-output-tokens-limit", str(OUTPUT_TOKENS_LIMIT)),
            ("anthropic-ratelimit-output-tokens-remaining", str(out_left)),
            ("anthropic-ratelimit-output-tokens-reset", tokens_reset),
        ]

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: _Exchange) -> bool:
        rid = _request_id()
        key = req.headers.get("x-api-key", "")
        if key:
            with self._lock:
                self._accounts.setdefault(key, _Account()).requests += 1
        headers = [("request-id", rid)]
        try:
            if key in self.valid_keys:
                behaviour = self.behaviour.get(key, "ok")
                try:
                    payload = self._route(req, behaviour)
                except AnthropicError as exc:
                    headers += self._account_headers(key, None, 0, limited=exc.status == 429)
                    raise
                if isinstance(payload, _Message):
                    self._use_cache(organization_id(key), payload)
                    pieces = {"slow": SLOW_PIECES, "cut-after-text": CUT_PIECES}.get(behaviour, OK_PIECES)
                    if payload.tool_results or payload.tool_calls:
                        pieces = tuple(f"Tool said: {r} " for r in payload.tool_results)
                    planned, stop_reason, stop_seq = _plan(pieces, payload)
                    headers += self._account_headers(key, payload, len(planned), limited=False)
                    return await _complete(payload, behaviour, planned, stop_reason, stop_seq, headers, writer, state)
                headers += self._account_headers(key, None, 0, limited=False)
            else:
                self._route(req, "ok", authenticate=key)
                raise AssertionError("an unknown key must be refused")  # pragma: no cover
        except AnthropicError as exc:
            return await send(
                writer, _json_answer(exc.status, exc.body(rid), headers + list(exc.headers), exc.close), close=exc.close
            )
        return await send(writer, _json_answer(200, payload, headers, False))

    def _route(self, req: Request, behaviour: str, authenticate: str | None = None) -> Any:
        """Pick the answer; ``authenticate`` is the presented key when it is not a valid one."""
        path, _, query = req.path.partition("?")
        routes = {"/v1/models": "GET", "/v1/messages": "POST"}
        if path.startswith("/v1/models/"):
            routes[path] = "GET"
        if path not in routes:
            raise AnthropicError(404, "not_found_error", "Not Found")
        if req.method != routes[path]:
            raise AnthropicError(405, "invalid_request_error", "Method Not Allowed")
        if authenticate is not None:
            if not authenticate:
                raise AnthropicError(401, "authentication_error", "x-api-key header is required")
            raise AnthropicError(401, "authentication_error", "invalid x-api-key")
        if behaviour == "401":
            raise AnthropicError(401, "authentication_error", "invalid x-api-key")
        if not req.headers.get("anthropic-version"):
            raise _invalid("anthropic-version: header is required")
        if path == "/v1/models":
            return _list_models(parse_qs(query))
        if path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            for model in MODELS:
                if model[0] == name:
                    return _model_obj(*model)
            raise AnthropicError(404, "not_found_error", f"model: {name}")
        msg = _validate_messages(parse_json(req.raw_body))
        if not any(msg.model == m[0] for m in MODELS) and not msg.model.startswith("claude-"):
            raise AnthropicError(404, "not_found_error", f"model: {msg.model}")
        if behaviour == "429":
            raise AnthropicError(
                429,
                "rate_limit_error",
                "This request would exceed the rate "
                f"limit for your organization of {REQUESTS_LIMIT} requests "
                "per minute. Please try again later.",
                headers=(("retry-after", str(self.retry_after)),),
            )
        if behaviour == "529":
            raise AnthropicError(529, "overloaded_error", "Overloaded")
        if behaviour == "500":
            raise AnthropicError(500, "api_error", "Internal server error")
        return msg


def _list_models(query: dict[str, list[str]]) -> dict[str, Any]:
    limit_raw = query.get("limit", ["20"])[0]
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 1000:
        raise _invalid("limit: Input should be between 1 and 1000")
    ids = [m[0] for m in MODELS]
    start, end = 0, len(MODELS)
    if after := query.get("after_id", [None])[0]:
        start = ids.index(after) + 1 if after in ids else end
    if before := query.get("before_id", [None])[0]:
        end = ids.index(before) if before in ids else 0
        start = max(start, end - int(limit_raw))
    page = [_model_obj(*m) for m in MODELS[start:end]][: int(limit_raw)]
    more = start + len(page) < end if not before else start > 0
    return {
        "data": page,
        "has_more": more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


async def _complete(
    msg: _Message,
    behaviour: str,
    pieces: list[str],
    stop_reason: str,
    stop_seq: str | None,
    headers: list[tuple[str, str]],
    writer: asyncio.StreamWriter,
    state: _Exchange,
) -> bool:
    """Produce the message; returns False when the connection must close."""
    mid = "msg_01" + uuid.uuid4().hex[:22]
    delay = {"slow": 0.02, "ok": 0.002}.get(behaviour, 0.0)
    cut = behaviour == "cut-after-text"
    output_tokens = len(pieces) + (len(THINKING_PIECES) if msg.thinking else 0)  # thinking is output too
    usage = {
        "input_tokens": msg.input_tokens,
        "cache_creation_input_tokens": msg.cache_write,
        "cache_read_input_tokens": msg.cache_read,
        "output_tokens": output_tokens,
    }
    state.in_flight = True

    if not msg.stream:
        if behaviour == "stall":
            await forever()
        await asyncio.sleep(delay * len(pieces))
        text = "".join(pieces)
        thought = (
            [{"type": "thinking", "thinking": "".join(THINKING_PIECES), "signature": THINKING_SIGNATURE}]
            if msg.thinking
            else []
        )
        body = dumps(
            {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": msg.model,
                "content": thought + ([{"type": "text", "text": text}] if text else []),
                "stop_reason": stop_reason,
                "stop_sequence": stop_seq,
                "usage": usage,
            }
        )
        return await write_whole(writer, state, body, headers, cut=cut)

    start = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": msg.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    writer.write(stream_head(headers) + _event("message_start", {"type": "message_start", "message": start}))
    await writer.drain()
    if behaviour == "stall":
        await forever()
    text_index = 0
    if msg.thinking:
        writer.write(_thinking_block())
        text_index = 1
    if msg.tool_calls:
        for name, data in tool_calls.anthropic_events(msg.tool_calls, text_index):
            writer.write(_event(name, data))
            await writer.drain()
        usage_out = {"output_tokens": output_tokens + len(msg.tool_calls)}
        delta = {"stop_reason": "tool_use", "stop_sequence": None}
        tail = _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage_out})
        return await end_chunked(writer, state, tail + _event("message_stop", {"type": "message_stop"}))
    writer.write(
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": text_index, "content_block": {"type": "text", "text": ""}},
        )
        + _event("ping", {"type": "ping"})
    )
    for piece in pieces:
        if delay:
            await asyncio.sleep(delay)
        writer.write(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": text_index, "delta": {"type": "text_delta", "text": piece}},
            )
        )
        await writer.drain()
    if cut:
        state.in_flight = False  # the server hangs up: not a client disconnect
        return False
    # The tail and the zero-length terminating chunk go out in a single write.
    return await end_chunked(
        writer,
        state,
        _event("content_block_stop", {"type": "content_block_stop", "index": text_index})
        + _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_seq},
                # Cumulative counts (MessageDeltaUsage): the input and cache figures of message_start again.
                "usage": usage,
            },
        )
        + _event("message_stop", {"type": "message_stop"}),
    )


def _thinking_block() -> bytes:
    """Block 0 of a reply with extended thinking: the thinking, then its signature, as streamed."""
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}
    deltas = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}}
        for piece in THINKING_PIECES
    ]
    signature = {"type": "signature_delta", "signature": THINKING_SIGNATURE}
    deltas.append({"type": "content_block_delta", "index": 0, "delta": signature})
    return (
        _event("content_block_start", start)
        + b"".join(_event("content_block_delta", d) for d in deltas)
        + _event("content_block_stop", {"type": "content_block_stop", "index": 0})
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Anthropic Messages API fault-injection server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--key",
        action="append",
        default=None,
        help=f"a valid x-api-key (repeatable; default {', '.join(DEFAULT_KEYS)})",
    )
    parser.add_argument(
        "--behave",
        action="append",
        default=[],
        metavar="KEY=BEHAVIOUR",
        help=f"one of: {', '.join(BEHAVIOURS)} (repeatable)",
    )
    args = parser.parse_args(argv)
    server = AnthropicServer(port=args.port, valid_keys=set(args.key) if args.key else None)
    for item in args.behave:
        key, sep, behaviour = item.partition("=")
        if not sep or behaviour not in BEHAVIOURS:
            parser.error(f"--behave expects KEY=BEHAVIOUR, got {item!r}")
        server.behaviour[key] = behaviour
    run_main(server)


if __name__ == "__main__":
    main()
