"""The loopback Ollama server forwards chat to a real llama-server (the Gemma 270M GGUF) and
answers in Ollama's wire format, checked through the official `ollama` client and raw with httpx."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import ollama
import pytest

from tests.servers.llama import LlamaServer
from tests.servers.ollama_chat import RUNNER_FAILED, RUNNER_STOPPED
from tests.servers.ollama_server import OllamaServer
from tests.servers.process import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "gemma3:270m"
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")
METRICS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}
LONG_TASK = [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}]
TIMEOUT_S = 120.0  # two shared cores: a reply of a few dozen tokens can take seconds


@pytest.fixture
def server(ollama_server: OllamaServer) -> OllamaServer:
    """The loopback Ollama forwarding to the real llama-server (tests/conftest.py)."""
    return ollama_server


@pytest.fixture
def client(server: OllamaServer) -> ollama.Client:
    return ollama.Client(host=server.base_url, timeout=TIMEOUT_S)


def _chat_to_the_end(client: ollama.Client, *, stream: bool) -> None:
    result = client.chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=stream)
    if stream:
        list(result)


def decoded(llama: LlamaServer) -> int | None:
    """Tokens generated so far by llama-server's busy slot; None once no slot is processing."""
    for slot in llama.slots():
        if slot.get("is_processing"):
            return sum(token.get("n_decoded", 0) for token in slot.get("next_token") or ())
    return None


def test_a_streamed_chat_is_llama_servers_text_in_ollamas_lines(server: OllamaServer, client: ollama.Client) -> None:
    parts = list(
        client.chat(
            model=MODEL,
            stream=True,
            messages=[{"role": "user", "content": "Name three colours."}],
            options={"num_predict": 24, "temperature": 0, "seed": 7, "top_k": 20, "stop": ["\n\n\n"], "num_ctx": 8192},
        )
    )
    *pieces, last = parts
    assert len(pieces) >= 3, "the reply comes in several chunks"
    assert all(not p.done and p.message.role == "assistant" and p.message.content for p in pieces)
    assert "".join(p.message.content for p in pieces).strip()
    assert last.done and last.done_reason in ("stop", "length") and last.message.content == ""
    assert last.eval_count is not None and last.eval_count >= len(pieces)
    assert last.prompt_eval_count is not None and last.prompt_eval_count > 0
    assert last.total_duration > last.eval_duration > 0 and last.prompt_eval_duration > 0
    assert last.load_duration > 0
    # The OpenAI request llama-server got: the model's SYSTEM first, the options mapped.
    request = server.upstream_requests[-1]
    assert request["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours."},
    ]
    assert {k: request[k] for k in ("max_tokens", "temperature", "seed", "top_k", "stop", "stream")} == {
        "max_tokens": 24,
        "temperature": 0,
        "seed": 7,
        "top_k": 20,
        "stop": ["\n\n\n"],
        "stream": True,
    }
    assert "num_ctx" not in request  # fixed when llama-server started, as for an Ollama runner


def test_the_raw_lines_are_exactly_ollamas(server: OllamaServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 6}}
    with httpx.stream("POST", f"{server.base_url}/api/chat", json=body, timeout=TIMEOUT_S) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        raw = list(response.iter_lines())
    lines = [json.loads(line) for line in raw]
    assert raw[0].startswith('{"model":"gemma3:270m","created_at":"')  # Go's field order
    for line in lines[:-1]:
        assert list(line) == ["model", "created_at", "message", "done"]
        assert line["done"] is False and list(line["message"]) == ["role", "content"]
        assert RFC3339_NANO.match(line["created_at"])
    final = lines[-1]
    assert list(final)[:5] == ["model", "created_at", "message", "done_reason", "done"]
    assert set(final) - {"model", "created_at", "message", "done_reason", "done"} == METRICS
    assert final["done"] is True and final["message"] == {"role": "assistant", "content": ""}
    assert all(isinstance(final[k], int) and final[k] > 0 for k in METRICS)


def test_without_streaming_the_reply_is_one_object(server: OllamaServer, client: ollama.Client) -> None:
    reply = client.chat(
        model=MODEL,
        stream=False,
        options={"num_predict": 8},
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is the sky's colour?"},
        ],
    )
    assert reply.done and reply.message.content.strip()
    assert reply.done_reason in ("stop", "length") and 0 < reply.eval_count <= 8
    # The chat has its own system message: the model's is not added.
    assert [m["role"] for m in server.upstream_requests[-1]["messages"]] == ["system", "user"]
    raw = httpx.post(
        f"{server.base_url}/api/chat",
        timeout=TIMEOUT_S,
        json={
            "model": MODEL,
            "stream": False,
            "options": {"num_predict": 2},
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert raw.json()["done"] is True and raw.json()["eval_count"] <= 2


def test_num_predict_cuts_the_reply_with_done_reason_length(client: ollama.Client) -> None:
    parts = list(
        client.chat(
            model=MODEL,
            stream=True,
            options={"num_predict": 4},
            messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        )
    )
    assert parts[-1].done_reason == "length" and parts[-1].eval_count == 4


def test_prompted_generate_is_forwarded_too(server: OllamaServer, client: ollama.Client) -> None:
    parts = list(
        client.generate(
            model=MODEL, prompt="Say hello.", system="You are terse.", stream=True, options={"num_predict": 6}
        )
    )
    assert all(not p.done for p in parts[:-1]) and "".join(p.response for p in parts).strip()
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length")
    assert parts[-1].eval_count and parts[-1].eval_count <= 6
    assert server.upstream_requests[-1]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello."},
    ]
    whole = client.generate(model=MODEL, prompt="Say hello.", stream=False, options={"num_predict": 3})
    assert whole.done and whole.response.strip() and whole.eval_count <= 3


def test_a_json_schema_format_constrains_llama_servers_output(server: OllamaServer, client: ollama.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = client.chat(
        model=MODEL,
        stream=False,
        format=schema,
        options={"num_predict": 60},
        messages=[{"role": "user", "content": "Is water wet? Answer in JSON."}],
    )
    assert isinstance(json.loads(reply.message.content)["ok"], bool)
    assert server.upstream_requests[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "format", "schema": schema},
    }
    client.chat(
        model=MODEL,
        stream=False,
        format="json",
        options={"num_predict": 2},
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert server.upstream_requests[-1]["response_format"] == {"type": "json_object"}


def test_an_unknown_model_is_404_without_touching_llama_server(server: OllamaServer, client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="nope", messages=[{"role": "user", "content": "Hi"}])
    assert (raised.value.status_code, raised.value.error) == (404, "model 'nope' not found")
    assert server.upstream_requests == []


def test_bad_options_and_formats_are_refused_like_ollama(server: OllamaServer) -> None:
    def chat(**extra: object) -> httpx.Response:
        return httpx.post(
            f"{server.base_url}/api/chat",
            timeout=TIMEOUT_S,
            json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **extra},
        )

    assert chat(options={"seed": "x"}).json() == {"error": 'option "seed" must be of type integer'}
    assert chat(options={"stop": [1]}).json() == {"error": 'option "stop" must be of an array of strings'}
    bad_format = chat(format="xml")
    assert bad_format.status_code == 500
    assert bad_format.json()["error"].startswith('invalid format: "\\"xml\\""; expected "json"')
    assert server.upstream_requests == []
    too_long = chat(messages=[{"role": "user", "content": "word " * 5000}])  # past the 4,096 context
    assert too_long.status_code == 400 and "exceeds the available context size" in too_long.json()["error"]


def test_leaving_mid_stream_frees_llama_servers_slot(
    llama: LlamaServer, server: OllamaServer, client: ollama.Client
) -> None:
    # Greedy counting to 1000 runs for a minute or more; only the closed request can stop it.
    stream = client.chat(model=MODEL, messages=LONG_TASK, stream=True, options={"num_predict": 3000, "temperature": 0})
    received = [part for _, part in zip(range(5), stream, strict=False)]
    assert len(received) == 5 and not received[-1].done
    at_close = decoded(llama)
    assert at_close is not None, "llama-server is generating"
    stream.close()
    last, deadline = at_close, time.monotonic() + 30.0
    while (now := decoded(llama)) is not None and time.monotonic() < deadline:
        last = now
    assert now is None, "llama-server kept generating after the client left"
    # Stopped by the closed connection: a few tokens later, not by its 5 s write timeout.
    assert last - at_close < 100, f"{last - at_close} tokens generated after the client left"
    assert server.client_disconnects == 1


def test_llama_server_down_is_ollamas_runner_error() -> None:
    with OllamaServer(chat_upstream=f"http://127.0.0.1:{free_port()}", installed=[MODEL]) as srv:
        client = ollama.Client(host=srv.base_url, timeout=TIMEOUT_S)
        for stream in (False, True):
            with pytest.raises(ollama.ResponseError) as raised:
                _chat_to_the_end(client, stream=stream)
            assert (raised.value.status_code, raised.value.error) == (500, RUNNER_STOPPED)


def test_llama_server_dying_mid_stream_ends_it_with_an_error_line() -> None:
    with LlamaServer() as doomed, OllamaServer(chat_upstream=doomed.base_url, installed=[MODEL]) as srv:
        body = {"model": MODEL, "messages": LONG_TASK, "options": {"num_predict": 3000}}
        with httpx.stream("POST", f"{srv.base_url}/api/chat", json=body, timeout=TIMEOUT_S) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert json.loads(next(lines))["done"] is False
            assert doomed.process is not None
            doomed.process.kill()  # the llama-server this test started
            rest = [json.loads(line) for line in lines]
    assert rest[-1]["error"].startswith(RUNNER_FAILED)
    assert all("error" not in line for line in rest[:-1])


def test_the_subprocess_forwards_with_chat_upstream(llama: LlamaServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.ollama_server", "--installed", MODEL, "--chat-upstream", llama.base_url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip().removeprefix("PORT=")
        client = ollama.Client(host=f"http://127.0.0.1:{port}", timeout=TIMEOUT_S)
        reply = client.chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 3})
        assert reply.done and reply.eval_count and reply.message.content
        with pytest.raises(ollama.ResponseError) as raised:
            client.chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}], options={"top_p": "x"})
        assert raised.value.status_code == 500  # an ApiError from the module run as __main__
    finally:
        proc.terminate()  # this child only
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
