"""The Anthropic fault server must speak the Messages API wire format, and LiteLLM must read it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.anthropic_fault import (
    CUT_PIECES,
    MODELS,
    OK_PIECES,
    THINKING_PIECES,
    THINKING_SIGNATURE,
    AnthropicServer,
    organization_id,
)

# Must be set before litellm is imported anywhere: no network fetch of the cost map.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

KEY_A, KEY_B = "sk-ant-test-a", "sk-ant-test-b"
MODEL = "claude-sonnet-4-5"
MESSAGES = [{"role": "user", "content": "Say hello to the test suite"}]
VERSION = "2023-06-01"
REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_HEADERS = {
    "anthropic-organization-id",
    *(
        f"anthropic-ratelimit-{kind}-{field}"
        for kind in ("requests", "tokens", "input-tokens", "output-tokens")
        for field in ("limit", "remaining", "reset")
    ),
}
STREAM_EVENTS = (
    ["message_start", "content_block_start", "ping"]
    + ["content_block_delta"] * len(OK_PIECES)
    + ["content_block_stop", "message_delta", "message_stop"]
)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


def headers_for(key: str | None = KEY_A, version: str | None = VERSION) -> dict[str, str]:
    headers = {}
    if key is not None:
        headers["x-api-key"] = key
    if version is not None:
        headers["anthropic-version"] = version
    return headers


@pytest.fixture
def client(server: AnthropicServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=headers_for(), timeout=10) as c:
        yield c


def message_body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 256, "messages": MESSAGES, **extra}


def sse_events(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` pairs, checking each is ``event:``, ``data:``, blank line."""
    events = []
    assert len(lines) % 3 == 0, lines
    for i in range(0, len(lines), 3):
        name, data, blank = lines[i : i + 3]
        assert name.startswith("event: ") and data.startswith("data: ") and blank == "", (name, data, blank)
        payload = json.loads(data.removeprefix("data: "))
        assert payload["type"] == name.removeprefix("event: ")
        events.append((payload["type"], payload))
    return events


def stream_events(
    client: httpx.Client, body: dict[str, Any], **kwargs: Any
) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
    with client.stream("POST", "/v1/messages", json=body, **kwargs) as response:
        assert response.status_code == 200, response.read()
        return response, sse_events(list(response.iter_lines()))


def text_of(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(e["delta"]["text"] for name, e in events if name == "content_block_delta")


def assert_anthropic_error(response: httpx.Response, status: int, type_: str, message: str | None = None) -> str:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == type_
    assert body["request_id"] == response.headers["request-id"]
    assert body["request_id"].startswith("req_")
    if message is not None:
        assert body["error"]["message"] == message
    return str(body["error"]["message"])


def rfc3339(value: str) -> datetime:
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


# --- auth, headers and /v1/models -----------------------------------------------------------


def test_models_require_a_known_key_and_a_version(server: AnthropicServer) -> None:
    url = f"{server.base_url}/v1/models"
    missing = httpx.get(url, headers=headers_for(key=None))
    assert_anthropic_error(missing, 401, "authentication_error", "x-api-key header is required")
    wrong = httpx.get(url, headers=headers_for(key="sk-ant-wrong-key-123456"))
    assert_anthropic_error(wrong, 401, "authentication_error", "invalid x-api-key")
    assert "sk-ant-wrong" not in wrong.text
    # An unknown key belongs to no organization: no account headers.
    assert not ACCOUNT_HEADERS & set(wrong.headers)
    no_version = httpx.get(url, headers=headers_for(version=None))
    assert_anthropic_error(no_version, 400, "invalid_request_error", "anthropic-version: header is required")
    assert no_version.headers["anthropic-organization-id"] == organization_id(KEY_A)


def test_models_list_shape_and_paging(client: httpx.Client) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert set(response.headers) >= ACCOUNT_HEADERS
    listing = response.json()
    assert set(listing) == {"data", "has_more", "first_id", "last_id"}
    assert listing["has_more"] is False
    ids = [m["id"] for m in listing["data"]]
    assert MODEL in ids and ids == [m[0] for m in MODELS]
    assert (listing["first_id"], listing["last_id"]) == (ids[0], ids[-1])
    for model in listing["data"]:
        assert set(model) == {"type", "id", "display_name", "created_at"}
        assert model["type"] == "model"
        rfc3339(model["created_at"])
    page = client.get("/v1/models", params={"limit": 1, "after_id": ids[0]}).json()
    assert [m["id"] for m in page["data"]] == [ids[1]]
    assert page["has_more"] is True
    one = client.get(f"/v1/models/{MODEL}")
    assert one.json()["display_name"] == "Claude Sonnet 4.5"
    assert_anthropic_error(client.get("/v1/models/gpt-4o"), 404, "not_found_error", "model: gpt-4o")


def test_unknown_paths_and_methods(client: httpx.Client) -> None:
    assert_anthropic_error(client.post("/v1/chat/completions", json={}), 404, "not_found_error")
    assert_anthropic_error(client.get("/v1/messages"), 405, "invalid_request_error")


def test_rate_limit_headers_are_per_key_and_count_down(client: httpx.Client, server: AnthropicServer) -> None:
    first = client.post("/v1/messages", json=message_body())
    second = client.post("/v1/messages", json=message_body())
    other = client.post("/v1/messages", json=message_body(), headers={"x-api-key": KEY_B})
    for response in (first, second, other):
        assert response.status_code == 200
        assert set(response.headers) >= ACCOUNT_HEADERS
        assert response.headers["request-id"].startswith("req_")
        for name, value in response.headers.items():
            if name.endswith("-reset"):
                rfc3339(value)
    remaining = [int(r.headers["anthropic-ratelimit-requests-remaining"]) for r in (first, second, other)]
    limit = int(first.headers["anthropic-ratelimit-requests-limit"])
    assert remaining == [limit - 1, limit - 2, limit - 1]
    for kind in ("tokens", "input-tokens", "output-tokens"):
        name = f"anthropic-ratelimit-{kind}-remaining"
        assert int(second.headers[name]) < int(first.headers[name])
        assert int(other.headers[name]) == int(first.headers[name])
    assert first.headers["anthropic-organization-id"] == organization_id(KEY_A)
    assert other.headers["anthropic-organization-id"] == organization_id(KEY_B)
    assert organization_id(KEY_A) != organization_id(KEY_B)
    assert first.headers["request-id"] != second.headers["request-id"]
    assert server.counts == {KEY_A: 2, KEY_B: 1}


# --- /v1/messages: format ---------------------------------------------------------------------


def test_stream_events_are_in_the_documented_order(client: httpx.Client, server: AnthropicServer) -> None:
    response, events = stream_events(client, message_body(stream=True, system="Be brief."))
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert set(response.headers) >= ACCOUNT_HEADERS
    assert [name for name, _ in events] == STREAM_EVENTS
    start = events[0][1]["message"]
    assert start["type"] == "message" and start["role"] == "assistant"
    assert start["id"].startswith("msg_") and start["model"] == MODEL
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] > 0
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    deltas = [e for name, e in events if name == "content_block_delta"]
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas)
    assert text_of(events) == "".join(OK_PIECES)
    assert events[-3][1] == {"type": "content_block_stop", "index": 0}
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    # Cumulative, as MessageDeltaUsage documents: the input and cache counts of message_start again.
    assert delta["usage"] == {**start["usage"], "output_tokens": len(OK_PIECES)}
    assert events[-1][1] == {"type": "message_stop"}
    recorded = server.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["x-api-key"] == KEY_A
    assert recorded.json()["system"] == "Be brief."


def test_stream_uses_chunked_framing_and_ends_with_the_zero_chunk(server: AnthropicServer) -> None:
    body = json.dumps(message_body(stream=True)).encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY_A}\r\n"
        f"anthropic-version: {VERSION}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, chunked = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head
    assert chunked.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n\r\n0\r\n\r\n')


def test_non_stream_message(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=message_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    message = response.json()
    assert set(message) == {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
    assert message["content"] == [{"type": "text", "text": "".join(OK_PIECES)}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["usage"]["input_tokens"] > 0
    assert message["usage"]["output_tokens"] == len(OK_PIECES)


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_and_stop_sequences_end_the_message(client: httpx.Client, stream: bool) -> None:
    def run(**extra: Any) -> tuple[str, str, str | None, int]:
        body = message_body(stream=stream, **extra)
        if not stream:
            m = client.post("/v1/messages", json=body).json()
            text = m["content"][0]["text"] if m["content"] else ""
            return text, m["stop_reason"], m["stop_sequence"], m["usage"]["output_tokens"]
        _, events = stream_events(client, body)
        delta = events[-2][1]
        return (
            text_of(events),
            delta["delta"]["stop_reason"],
            delta["delta"]["stop_sequence"],
            delta["usage"]["output_tokens"],
        )

    assert run(max_tokens=3) == ("w0 w1 w2 ", "max_tokens", None, 3)
    assert run(stop_sequences=["w5"]) == ("w0 w1 w2 w3 w4 ", "stop_sequence", "w5", 5)


def test_keep_alive_reuses_the_connection(client: httpx.Client, server: AnthropicServer) -> None:
    client.get("/v1/models")
    stream_events(client, message_body(stream=True, max_tokens=2))
    server.behaviour[KEY_A] = "529"
    client.post("/v1/messages", json=message_body())
    client.post("/v1/messages", json={"model": MODEL})
    client.get("/v1/models")
    assert len({r.connection for r in server.requests}) == 1


# --- /v1/messages: validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": MODEL, "messages": MESSAGES}, "max_tokens: Field required"),
        ({"max_tokens": 5, "messages": MESSAGES}, "model: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
        (message_body(messages=[]), "messages: at least one message is required"),
        (
            message_body(messages=[{"role": "system", "content": "x"}]),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (message_body(messages=[{"content": "hi"}]), "messages.0.role: Field required"),
        (
            message_body(messages=[{"role": "user", "content": 5}]),
            "messages.0.content: Input should be a valid string or a valid list",
        ),
        (
            message_body(messages=[{"role": "user", "content": ""}]),
            ("messages.0: all messages must have non-empty content except for the optional final assistant message"),
        ),
        (message_body(max_tokens="10"), "max_tokens: Input should be a valid integer"),
        (message_body(stream="yes"), "stream: Input should be a valid boolean"),
        (message_body(temperature=1.5), "temperature: Input should be less than or equal to 1"),
        (message_body(top_p=-0.1), "top_p: Input should be greater than or equal to 0"),
        (message_body(stop_sequences="END"), "stop_sequences: Input should be a valid list of strings"),
        (message_body(metadata={"user_id": "u1", "team": "x"}), "metadata.team: Extra inputs are not permitted"),
        (message_body(stream_options={"include_usage": True}), "stream_options: Extra inputs are not permitted"),
        (message_body(n=2), "n: Extra inputs are not permitted"),
    ],
)
def test_invalid_requests_are_rejected_like_anthropic(
    client: httpx.Client, server: AnthropicServer, body: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/messages", json=body)
    assert_anthropic_error(response, 400, "invalid_request_error", message)
    assert set(response.headers) >= ACCOUNT_HEADERS


def test_accepted_optional_fields(client: httpx.Client) -> None:
    body = message_body(
        system=[{"type": "text", "text": "Be brief."}],
        temperature=0.2,
        top_p=0.9,
        top_k=5,
        stop_sequences=["never"],
        metadata={"user_id": "u1"},
        messages=[*MESSAGES, {"role": "assistant", "content": "Sure:"}],
    )
    assert client.post("/v1/messages", json=body).status_code == 200


# --- extended thinking (as its documentation says: a budget of 1,024 or more, below max_tokens, and
# no temperature but 1, no top_k, no top_p under 0.95 while it is on) ----------------------------------

THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (message_body(thinking={"type": "on"}), "does not match any of the expected tags"),
        (message_body(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens: Field required"),
        (
            message_body(thinking={"type": "enabled", "budget_tokens": 1023}, max_tokens=4096),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            message_body(thinking={"type": "enabled", "budget_tokens": "2048"}, max_tokens=4096),
            "thinking.enabled.budget_tokens: Input should be a valid integer",
        ),
        (
            message_body(thinking={**THINKING, "effort": "high"}, max_tokens=4096),
            "thinking.enabled.effort: Extra inputs are not permitted",
        ),
        (
            message_body(thinking=THINKING, max_tokens=1024),
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (message_body(thinking=THINKING, max_tokens=4096, temperature=0.5), "`temperature` may only be set to 1"),
        (message_body(thinking=THINKING, max_tokens=4096, top_k=5), "`top_k` may not be set when thinking"),
        (message_body(thinking=THINKING, max_tokens=4096, top_p=0.9), "`top_p` must be greater than or equal to 0.95"),
    ],
)
def test_thinking_is_refused_where_anthropic_refuses_it(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/messages", json=body)
    assert message in assert_anthropic_error(response, 400, "invalid_request_error")


def test_thinking_comes_first_as_a_signed_block(client: httpx.Client) -> None:
    _, events = stream_events(client, message_body(stream=True, thinking=THINKING, max_tokens=4096, temperature=1))
    starts = [e["content_block"]["type"] for name, e in events if name == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [e["delta"] for name, e in events if name == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "".join(THINKING_PIECES)
    assert [d["signature"] for d in deltas if d["type"] == "signature_delta"] == [THINKING_SIGNATURE]
    assert "".join(d.get("text", "") for d in deltas) == "".join(OK_PIECES)
    usage = next(e["usage"] for name, e in events if name == "message_delta")
    assert usage["output_tokens"] == len(OK_PIECES) + len(THINKING_PIECES)

    whole = client.post("/v1/messages", json=message_body(thinking=THINKING, max_tokens=4096)).json()
    assert [b["type"] for b in whole["content"]] == ["thinking", "text"]
    assert whole["content"][0]["signature"] == THINKING_SIGNATURE
    off = client.post("/v1/messages", json=message_body(thinking={"type": "disabled"}, temperature=0.5)).json()
    assert [b["type"] for b in off["content"]] == ["text"]


def test_invalid_json_and_unknown_model(client: httpx.Client) -> None:
    response = client.post("/v1/messages", content=b"{not json", headers={"content-type": "application/json"})
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert_anthropic_error(
        client.post("/v1/messages", json=message_body(model="gpt-4o")), 404, "not_found_error", "model: gpt-4o"
    )


# --- per-key behaviours -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("behaviour", "status", "type_"),
    [
        ("401", 401, "authentication_error"),
        ("429", 429, "rate_limit_error"),
        ("500", 500, "api_error"),
        ("529", 529, "overloaded_error"),
    ],
)
def test_error_behaviours_hit_only_their_key(
    client: httpx.Client, server: AnthropicServer, stream: bool, behaviour: str, status: int, type_: str
) -> None:
    server.behaviour[KEY_B] = behaviour
    server.retry_after = 3
    body = message_body(stream=stream)
    failed = client.post("/v1/messages", json=body, headers={"x-api-key": KEY_B})
    assert_anthropic_error(failed, status, type_)
    assert KEY_B not in failed.text
    assert failed.headers["anthropic-organization-id"] == organization_id(KEY_B)
    if behaviour == "429":
        assert failed.headers["retry-after"] == "3"
        assert failed.headers["anthropic-ratelimit-requests-remaining"] == "0"
        reset = rfc3339(failed.headers["anthropic-ratelimit-requests-reset"])
        assert reset.timestamp() > datetime.now().timestamp()
    else:
        assert "retry-after" not in failed.headers
    # The other account on the same server is unaffected.
    if stream:
        assert text_of(stream_events(client, body)[1]) == "".join(OK_PIECES)
    else:
        assert client.post("/v1/messages", json=body).status_code == 200
    assert server.counts == {KEY_B: 1, KEY_A: 1}


def test_revoked_key_fails_every_endpoint(client: httpx.Client, server: AnthropicServer) -> None:
    server.behaviour[KEY_A] = "401"
    assert_anthropic_error(client.get("/v1/models"), 401, "authentication_error", "invalid x-api-key")


def test_a_misspelt_behaviour_fails_where_it_is_set(server: AnthropicServer) -> None:
    with pytest.raises(ValueError, match="unknown behaviour 'overloaded'"):
        server.behaviour[KEY_A] = "overloaded"
    assert server.behaviour.get(KEY_A, "ok") == "ok"


def test_cut_after_text_closes_the_socket_mid_stream(client: httpx.Client, server: AnthropicServer) -> None:
    server.behaviour[KEY_A] = "cut-after-text"
    lines: list[str] = []
    with client.stream("POST", "/v1/messages", json=message_body(stream=True)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            lines.extend(response.iter_lines())  # keeps the lines read before the cut
    events = sse_events(lines)
    assert [name for name, _ in events] == (
        ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 3
    )
    assert text_of(events) == "".join(CUT_PIECES)
    assert server.disconnects == 0  # the server hung up, not the client

    with pytest.raises(httpx.RemoteProtocolError):  # non-stream: half of the promised body
        client.post("/v1/messages", json=message_body())


def _raw_stream_request(key: str) -> bytes:
    body = json.dumps(message_body(stream=True)).encode()
    return (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
        f"anthropic-version: {VERSION}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_stall_goes_quiet_after_message_start_and_notices_the_client_leaving(server: AnthropicServer) -> None:
    server.behaviour[KEY_A] = "stall"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_raw_stream_request(KEY_A))
        received = b""
        while b"event: message_start" not in received or not received.endswith(b"\n\n\r\n"):
            data = sock.recv(65536)
            assert data, "the server closed a stalled stream"
            received += data
        sock.settimeout(0.3)  # now prove silence: nothing more arrives
        with pytest.raises(TimeoutError):
            sock.recv(65536)
    assert received.count(b"event: ") == 1
    assert server.client_disconnected.wait(5)
    assert server.disconnects == 1


def test_slow_stream_and_a_client_leaving_it(client: httpx.Client, server: AnthropicServer) -> None:
    server.behaviour[KEY_A] = "slow"
    texts: list[str] = []
    with client.stream("POST", "/v1/messages", json=message_body(stream=True)) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"text_delta"' in line:
                texts.append(json.loads(line[6:])["delta"]["text"])
            if len(texts) == 5:
                break  # leaving the block closes the response mid-stream
    assert texts == [f"s{i} " for i in range(5)]
    assert server.client_disconnected.wait(5)
    assert server.disconnects == 1


def test_stop_does_not_wait_for_a_stalled_stream() -> None:
    server = AnthropicServer()
    server.start()
    server.behaviour[KEY_A] = "stall"
    with (
        httpx.Client(base_url=server.base_url, headers=headers_for(), timeout=10) as client,
        client.stream("POST", "/v1/messages", json=message_body(stream=True)) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "event: message_start"
        server.stop(timeout=5)
        assert server._thread is None  # joined
        with pytest.raises(httpx.RemoteProtocolError):
            list(lines)
    assert server.disconnects == 0


def test_runs_as_a_subprocess_and_exits_on_sigterm() -> None:
    command = [sys.executable, "-m", "tests.servers.anthropic_fault", "--port", "0", "--behave", f"{KEY_B}=429"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().strip()
            assert first.startswith("PORT=")
            base = f"http://127.0.0.1:{int(first[5:])}"
            assert httpx.get(f"{base}/v1/models", headers=headers_for()).status_code == 200
            limited = httpx.post(f"{base}/v1/messages", json=message_body(), headers=headers_for(KEY_B))
            assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


# --- real LiteLLM against the server --------------------------------------------------------


async def _litellm(server: AnthropicServer, key: str, **kwargs: Any) -> Any:
    import litellm

    return await litellm.acompletion(
        model=f"anthropic/{MODEL}", api_base=server.base_url, api_key=key, messages=MESSAGES, max_retries=0, **kwargs
    )


async def _collect_text(stream: Any, text: list[str]) -> None:
    """Append each chunk's text to `text` until the stream ends (or raises)."""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)


@pytest.mark.asyncio
async def test_litellm_streams_text_usage_and_account_headers(server: AnthropicServer) -> None:
    stream = await _litellm(server, KEY_A, stream=True, stream_options={"include_usage": True})
    # The headers of the HTTP answer, prefixed llm_provider-, on the stream and on each chunk.
    headers = stream._hidden_params["additional_headers"]
    text, usage, chunk_headers = [], None, []
    async for chunk in stream:
        chunk_headers.append(chunk._hidden_params["additional_headers"])
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert "".join(text) == "".join(OK_PIECES)
    assert usage is not None
    assert usage.completion_tokens == len(OK_PIECES) and usage.prompt_tokens > 0
    limit = int(headers["llm_provider-anthropic-ratelimit-requests-limit"])
    assert headers["llm_provider-anthropic-ratelimit-requests-remaining"] == str(limit - 1)
    assert headers["llm_provider-anthropic-organization-id"] == organization_id(KEY_A)
    assert headers["x-ratelimit-remaining-requests"] == str(limit - 1)  # OpenAI-style alias
    assert chunk_headers and all(
        h["llm_provider-anthropic-organization-id"] == organization_id(KEY_A) for h in chunk_headers
    )

    (recorded,) = server.requests
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["x-api-key"] == KEY_A
    assert recorded.headers["anthropic-version"] == VERSION
    assert "authorization" not in recorded.headers
    body = recorded.json()
    assert body["stream"] is True and body["model"] == MODEL
    assert isinstance(body["max_tokens"], int)  # LiteLLM fills in the required field
    assert "stream_options" not in body


@pytest.mark.asyncio
async def test_litellm_non_stream_surfaces_account_headers(server: AnthropicServer) -> None:
    response = await _litellm(server, KEY_B)
    assert response.choices[0].message.content == "".join(OK_PIECES)
    assert response.usage.completion_tokens == len(OK_PIECES)
    headers = response._hidden_params["additional_headers"]
    limit = int(headers["llm_provider-anthropic-ratelimit-requests-limit"])
    assert headers["llm_provider-anthropic-ratelimit-requests-remaining"] == str(limit - 1)
    assert headers["llm_provider-anthropic-organization-id"] == organization_id(KEY_B)
    assert headers["llm_provider-request-id"].startswith("req_")


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_litellm_maps_429_with_retry_after(server: AnthropicServer, stream: bool) -> None:
    import litellm

    server.behaviour[KEY_A] = "429"
    with pytest.raises(litellm.RateLimitError) as caught:
        await _litellm(server, KEY_A, stream=stream)
    exc = caught.value
    assert exc.status_code == 429
    # The synthetic exc.response carries no headers; the real ones are kept here.
    assert exc.litellm_response_headers["retry-after"] == "7"
    assert exc.litellm_response_headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert server.counts == {KEY_A: 1}  # max_retries=0: exactly one request
    # The second account on the same server still answers.
    response = await _litellm(server, KEY_B)
    assert response.choices[0].message.content == "".join(OK_PIECES)


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("behaviour", "exc_name", "status"),
    [
        ("529", "InternalServerError", 500),
        ("500", "InternalServerError", 500),
        ("401", "AuthenticationError", 401),
    ],
)
async def test_litellm_exception_classes(
    server: AnthropicServer, stream: bool, behaviour: str, exc_name: str, status: int
) -> None:
    import litellm

    server.behaviour[KEY_A] = behaviour
    with pytest.raises(getattr(litellm, exc_name)) as caught:
        await _litellm(server, KEY_A, stream=stream)
    assert caught.value.status_code == status
    assert caught.value.litellm_response_headers["anthropic-organization-id"] == (organization_id(KEY_A))
    assert server.counts == {KEY_A: 1}


@pytest.mark.asyncio
async def test_litellm_unknown_key_is_an_authentication_error(server: AnthropicServer) -> None:
    import litellm

    with pytest.raises(litellm.AuthenticationError):
        await _litellm(server, "sk-ant-not-an-account")


@pytest.mark.asyncio
async def test_litellm_cut_mid_stream_keeps_the_text_so_far(server: AnthropicServer) -> None:
    import litellm
    from litellm.exceptions import MidStreamFallbackError

    server.behaviour[KEY_A] = "cut-after-text"
    stream = await _litellm(server, KEY_A, stream=True)
    text: list[str] = []
    with pytest.raises(MidStreamFallbackError) as caught:  # litellm.<name> does not exist
        await _collect_text(stream, text)
    assert "".join(text) == "".join(CUT_PIECES)
    assert isinstance(caught.value, litellm.ServiceUnavailableError)
    assert caught.value.generated_content == "".join(CUT_PIECES)
    assert isinstance(caught.value.original_exception, litellm.APIConnectionError)


@pytest.mark.asyncio
async def test_litellm_streams_the_thinking_as_reasoning(server: AnthropicServer) -> None:
    stream = await _litellm(
        server, KEY_A, stream=True, thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=4096
    )
    reasoning, text = [], []
    async for chunk in stream:
        if chunk.choices:
            reasoning.append(getattr(chunk.choices[0].delta, "reasoning_content", None) or "")
            text.append(chunk.choices[0].delta.content or "")
    assert "".join(reasoning) == "".join(THINKING_PIECES)
    assert "".join(text) == "".join(OK_PIECES)
    assert server.requests[-1].json()["thinking"] == {"type": "enabled", "budget_tokens": 2048}


# --- prompt caching (cache_control breakpoints: type ephemeral, at most 4; a prefix under the minimum
# is not cached; the first request writes the prefix, the next reads it) -------------------------------

LONG_SYSTEM = " ".join(f"rule{i}" for i in range(1100))
EPHEMERAL = {"type": "ephemeral"}


def cached_body(**changes: Any) -> dict[str, Any]:
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPHEMERAL}]
    return message_body(system=system, **changes)


def marked(text: str, **control: Any) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral", **control}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            message_body(messages=[{"role": "user", "content": [marked("hi", type="persistent")]}]),
            "messages.0.content.0.cache_control: Input tag 'persistent' found using 'type' does not match any of the"
            " expected tags: 'ephemeral'",
        ),
        (
            message_body(messages=[{"role": "user", "content": [marked("hi", ttl="2h")]}]),
            "messages.0.content.0.cache_control.ephemeral.ttl: Input should be '5m' or '1h'",
        ),
        (
            message_body(system=[{"type": "text", "text": "x", "cache_control": "ephemeral"}]),
            "system.0.cache_control: Input should be a valid dictionary or object to extract fields from",
        ),
        (
            message_body(messages=[{"role": "user", "content": [marked(f"part {i}") for i in range(5)]}]),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
    ],
)
def test_cache_control_is_checked_like_anthropic(client: httpx.Client, body: dict[str, Any], message: str) -> None:
    assert_anthropic_error(client.post("/v1/messages", json=body), 400, "invalid_request_error", message)


def test_a_cached_prefix_is_written_then_read(client: httpx.Client) -> None:
    first = client.post("/v1/messages", json=cached_body()).json()["usage"]
    assert first["cache_creation_input_tokens"] > 1024 and first["cache_read_input_tokens"] == 0
    second = client.post("/v1/messages", json=cached_body()).json()["usage"]
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] == first["input_tokens"]  # the uncached rest, the same each time
    short = client.post("/v1/messages", json=message_body(system=[marked("Be brief.")])).json()["usage"]
    assert short["cache_creation_input_tokens"] == short["cache_read_input_tokens"] == 0  # under the minimum


def test_stream_reports_cache_tokens_in_start_and_delta(client: httpx.Client) -> None:
    client.post("/v1/messages", json=cached_body())
    _response, events = stream_events(client, cached_body(stream=True))
    start = events[0][1]["message"]["usage"]
    delta = next(e["usage"] for name, e in events if name == "message_delta")
    assert start["cache_read_input_tokens"] > 1024 and start["cache_creation_input_tokens"] == 0
    assert delta["cache_read_input_tokens"] == start["cache_read_input_tokens"]
