"""The fault server itself must speak the OpenAI Chat Completions wire format exactly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.openai_fault import FaultServer

# Must be set before litellm is imported anywhere: no network fetch of the cost map.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

KEY = "sk-test"
MESSAGES = [{"role": "user", "content": "Say hello to the test suite"}]
CHUNK_KEYS = {"id", "object", "created", "model", "system_fingerprint", "choices"}
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(server: FaultServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"authorization": f"Bearer {KEY}"}, timeout=10) as c:
        yield c


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, **extra}


def sse_payloads(lines: list[str]) -> list[str]:
    """The `data:` payloads of an SSE body, checking the blank line after each event."""
    payloads = []
    for i, line in enumerate(lines):
        if line.startswith("data: "):
            payloads.append(line.removeprefix("data: "))
            assert lines[i + 1] == "", f"event {line!r} is not followed by a blank line"
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return payloads


def stream_lines(client: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, list[str]]:
    with client.stream("POST", "/chat/completions", json=body) as response:
        return response, list(response.iter_lines())


def assert_openai_error(response: httpx.Response, status: int, type_: str, code: str | None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (type_, code)
    return error


# --- /v1/models and auth --------------------------------------------------------------------


def test_models_requires_a_known_key(server: FaultServer) -> None:
    url = f"{server.base_url}/models"
    missing = httpx.get(url)
    assert_openai_error(missing, 401, "invalid_request_error", None)
    assert "didn't provide an API key" in missing.json()["error"]["message"]

    wrong_key = "sk-bogus-0123456789abcdef"
    wrong = httpx.get(url, headers={"authorization": f"Bearer {wrong_key}"})
    error = assert_openai_error(wrong, 401, "invalid_request_error", "invalid_api_key")
    assert error["message"].startswith("Incorrect API key provided: sk-b***cdef.")
    assert wrong_key not in wrong.text


def test_models_list(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert {"ok", "slow", "fast-20000", "fault-429", "fault-cut", "fault-stall"} <= set(ids)
    for model in listing["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert (model["object"], model["owned_by"]) == ("model", "modeldesk-test")
        assert isinstance(model["created"], int)


def test_unknown_path_is_an_openai_404(client: httpx.Client) -> None:
    assert_openai_error(client.get("/nope"), 404, "invalid_request_error", None)


# --- chat completions: the happy path -------------------------------------------------------


def test_stream_format_line_by_line(client: httpx.Client, server: FaultServer) -> None:
    response, lines = stream_lines(client, chat_body("ok", stream=True, stream_options={"include_usage": True}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-request-id"].startswith("req_")

    payloads = sse_payloads(lines)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    for chunk in chunks:
        assert set(chunk) == CHUNK_KEYS | {"usage"}  # include_usage adds an explicit usage key
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"].startswith("chatcmpl-") and chunk["id"] == chunks[0]["id"]
        assert chunk["model"] == "ok" and chunk["system_fingerprint"] is None
    first, *content, finish, usage = chunks
    assert first["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    assert len(content) == 40
    assert "".join(c["choices"][0]["delta"]["content"] for c in content).split() == [f"word{i}" for i in range(40)]
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in content)
    assert finish["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert usage["choices"] == []
    numbers = usage["usage"]
    assert numbers["completion_tokens"] == 40 and numbers["prompt_tokens"] > 0
    assert numbers["total_tokens"] == numbers["prompt_tokens"] + numbers["completion_tokens"]

    recorded = server.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.body["stream_options"] == {"include_usage": True}
    assert recorded.json() == recorded.body


def test_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    _, lines = stream_lines(client, chat_body("gpt-test", stream=True))
    payloads = sse_payloads(lines)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(set(c) == CHUNK_KEYS and len(c["choices"]) == 1 for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_max_tokens_caps_the_stream(client: httpx.Client) -> None:
    _, lines = stream_lines(client, chat_body("ok", stream=True, max_tokens=3, stream_options={"include_usage": True}))
    chunks = [json.loads(p) for p in sse_payloads(lines)[:-1]]
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


def test_raw_bytes_use_chunked_framing_and_end_with_the_zero_chunk(server: FaultServer) -> None:
    body = json.dumps(chat_body("ok", stream=True, max_tokens=2)).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))  # server closes: Connection: close
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head and b"content-length" not in head
    events = []
    while True:  # decode the chunked body by hand: every chunk must be well framed
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            break
        events.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    assert all(e.startswith(b"data: ") and e.endswith(b"\n\n") for e in events)
    assert events[-1] == b"data: [DONE]\n\n"


def test_non_stream_completion(client: httpx.Client) -> None:
    response = client.post("/chat/completions", json=chat_body("ok", stop=["\n"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    choice = completion["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].split() == [f"word{i}" for i in range(40)]
    assert choice["finish_reason"] == "stop"
    assert completion["usage"]["completion_tokens"] == 40


def test_keep_alive_reuses_the_connection(client: httpx.Client, server: FaultServer) -> None:
    client.get("/models")
    stream_lines(client, chat_body("ok", stream=True, max_tokens=2))
    client.post("/chat/completions", json=chat_body("fault-500"))
    client.get("/models")
    assert len({r.connection for r in server.requests}) == 1


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": MESSAGES}, None, None),
        ({"model": 3, "messages": MESSAGES}, "model", "invalid_type"),
        ({"model": "ok"}, "messages", "missing_required_parameter"),
        ({"model": "ok", "messages": []}, "messages", "empty_array"),
        ({"model": "ok", "messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
        ({"model": "ok", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "invalid_value"),
        ({"model": "ok", "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        (chat_body("ok", stream="yes"), "stream", "invalid_type"),
        (chat_body("ok", stream_options={"include_usage": True}), "stream_options", None),
        (chat_body("ok", max_tokens=0), "max_tokens", "integer_below_min_value"),
        (chat_body("ok", temperature=3), "temperature", "decimal_out_of_range"),
        (chat_body("ok", api_base="http://x"), None, None),
    ],
)
def test_invalid_requests_are_rejected_like_openai(
    client: httpx.Client, body: dict[str, Any], param: str | None, code: str | None
) -> None:
    error = assert_openai_error(client.post("/chat/completions", json=body), 400, "invalid_request_error", code)
    assert error["param"] == param


def test_invalid_json_is_rejected(client: httpx.Client) -> None:
    response = client.post("/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    error = assert_openai_error(response, 400, "invalid_request_error", None)
    assert "could not parse the JSON body" in error["message"]


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("model", "status", "type_", "code", "message"),
    [
        ("fault-401", 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk***."),
        ("fault-403", 403, "invalid_request_error", "permission_denied", "You are not allowed to use this model."),
        (
            "fault-404",
            404,
            "invalid_request_error",
            "model_not_found",
            "The model `fault-404` does not exist or you do not have access to it.",
        ),
        ("fault-429", 429, "requests", "rate_limit_exceeded", "Rate limit reached for fault-429"),
        ("fault-500", 500, "server_error", None, "The server had an error while processing your request."),
        (
            "fault-context",
            400,
            "invalid_request_error",
            "context_length_exceeded",
            (
                "This model's maximum context length is 4096 tokens. However, your messages resulted in "
                "5000 tokens. Please reduce the length of the messages."
            ),
        ),
    ],
)
def test_http_faults(
    client: httpx.Client, stream: bool, model: str, status: int, type_: str, code: str | None, message: str
) -> None:
    response = client.post("/chat/completions", json=chat_body(model, stream=stream))
    error = assert_openai_error(response, status, type_, code)
    assert error["message"].startswith(message)
    assert KEY not in response.text
    if model == "fault-429":
        assert response.headers["retry-after"] == "7"
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert {
            "x-ratelimit-limit-requests",
            "x-ratelimit-reset-requests",
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        } <= set(response.headers)


def test_fault_cut_ends_without_done(client: httpx.Client, server: FaultServer) -> None:
    lines: list[str] = []
    with client.stream("POST", "/chat/completions", json=chat_body("fault-cut", stream=True)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            lines.extend(response.iter_lines())  # keeps the lines read before the cut
    payloads = [p for p in (line.removeprefix("data: ") for line in lines if line) if p]
    assert "[DONE]" not in payloads
    content = [json.loads(p)["choices"][0]["delta"]["content"] for p in payloads[1:]]
    assert content == [f"part{i} " for i in range(10)]
    assert server.disconnects == 0  # the server hung up, not the client


def test_fault_malformed_sends_invalid_json_then_done(client: httpx.Client) -> None:
    _, lines = stream_lines(client, chat_body("fault-malformed", stream=True))
    payloads = sse_payloads(lines)
    assert payloads[-1] == "[DONE]"
    assert payloads[-2] == '{"id": "broken", "choices": ['
    with pytest.raises(json.JSONDecodeError):
        json.loads(payloads[-2])
    good = [json.loads(p) for p in payloads[:-2]]
    assert [g["choices"][0]["delta"]["content"] for g in good[1:]] == [f"good{i} " for i in range(5)]


def test_fault_stall_goes_quiet_and_notices_the_client_leaving(server: FaultServer) -> None:
    body = json.dumps(chat_body("fault-stall", stream=True)).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"data: ") < 4:  # the role chunk and three content chunks
            data = sock.recv(65536)
            assert data, "the server closed a stalled stream"
            received += data
        sock.settimeout(0.3)  # now prove silence: nothing more arrives
        with pytest.raises(TimeoutError):
            sock.recv(65536)
    events = [json.loads(line[6:]) for line in received.decode().split("\r\n") if line.startswith("data: ")]
    assert [e["choices"][0]["delta"]["content"] for e in events] == ["", "stall0 ", "stall1 ", "stall2 "]
    assert server.client_disconnected.wait(5)
    assert server.disconnects == 1


def test_stop_does_not_wait_for_a_stalled_stream() -> None:
    server = FaultServer()
    server.start()
    with (
        httpx.Client(base_url=server.base_url, headers={"authorization": f"Bearer {KEY}"}, timeout=10) as client,
        client.stream("POST", "/chat/completions", json=chat_body("fault-stall", stream=True)) as response,
    ):
        lines = response.iter_lines()
        next(lines)  # the stream is open and stalled
        server.stop(timeout=5)
        assert server._thread is None  # joined
        with pytest.raises(httpx.RemoteProtocolError):
            list(lines)
    assert server.disconnects == 0


def test_fast_stream_yields_exactly_n_content_chunks(client: httpx.Client) -> None:
    _, lines = stream_lines(client, chat_body("fast-20000", stream=True, stream_options={"include_usage": True}))
    payloads = sse_payloads(lines)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == 20000
    assert chunks[-1]["usage"]["completion_tokens"] == 20000


def test_client_closing_a_slow_stream_sets_client_disconnected(client: httpx.Client, server: FaultServer) -> None:
    received = 0
    with client.stream("POST", "/chat/completions", json=chat_body("slow", stream=True)) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                received += 1
            if received == 5:
                break  # leaving the block closes the response mid-stream
    assert server.client_disconnected.wait(5)
    assert server.disconnects == 1


def test_runs_as_a_subprocess_and_exits_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.servers.openai_fault", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().strip()
            assert first.startswith("PORT=")
            response = httpx.get(
                f"http://127.0.0.1:{int(first[5:])}/v1/models", headers={"authorization": f"Bearer {KEY}"}
            )
            assert response.status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


# --- real LiteLLM against the server --------------------------------------------------------


@pytest.mark.asyncio
async def test_litellm_streams_text_and_usage_and_maps_429(server: FaultServer) -> None:
    import litellm

    stream = await litellm.acompletion(
        model="openai/ok",
        api_base=server.base_url,
        api_key=KEY,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert "".join(text).split() == [f"word{i}" for i in range(40)]
    assert usage is not None and usage.completion_tokens == 40 and usage.prompt_tokens > 0

    before = len(server.requests)
    with pytest.raises(litellm.RateLimitError):
        # The OpenAI SDK would otherwise retry twice, honouring retry-after: 7.
        await litellm.acompletion(
            model="openai/fault-429", api_base=server.base_url, api_key=KEY, messages=MESSAGES, max_retries=0
        )
    assert len(server.requests) == before + 1


def test_prompt_caching_model_reports_cached_tokens_from_the_second_sight(client: httpx.Client) -> None:
    system = {"role": "system", "content": " ".join(f"rule{i}" for i in range(1100))}
    turn = [system, {"role": "user", "content": "hi"}]
    first = client.post("/chat/completions", json=chat_body("gpt-4o-mini", messages=turn)).json()["usage"]
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    second = client.post(
        "/chat/completions", json=chat_body("gpt-4o-mini", messages=[*turn[:1], {"role": "user", "content": "yo"}])
    ).json()["usage"]
    cached = second["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024 and cached % 128 == 0 and cached < second["prompt_tokens"]
    assert "prompt_tokens_details" not in client.post("/chat/completions", json=chat_body("ok")).json()["usage"]


def test_flaky_model_fails_n_times_with_retry_after_then_answers(client: httpx.Client, server: FaultServer) -> None:
    server.retry_after = "Wed, 21 Oct 2026 07:28:00 GMT"
    for _ in range(2):
        response = client.post("/chat/completions", json=chat_body("flaky-2-429"))
        assert_openai_error(response, 429, "requests", "rate_limit_exceeded")
        assert response.headers["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert client.post("/chat/completions", json=chat_body("flaky-2-429")).status_code == 200
    server.retry_after = "1"
    response = client.post("/chat/completions", json=chat_body("flaky-1-503"))
    assert_openai_error(response, 503, "server_error", None)
    assert response.headers["retry-after"] == "1"
