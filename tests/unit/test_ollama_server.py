"""The loopback Ollama server must speak Ollama's /api/* wire format exactly, checked raw with httpx."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.ollama_server import (
    MODELS_DIR,
    OllamaServer,
    short_name,
)
from tests.servers.ollama_time import parse_keep_alive

REPO_ROOT = Path(__file__).resolve().parents[2]
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")
HEX12 = re.compile(r"^pulling [0-9a-f]{12}$")


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(installed=["llama3.2:1b", "gemma3:270m"], tick_s=0.002, bytes_per_tick=250_000) as srv:
        yield srv


@pytest.fixture
def client(server: OllamaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def pull_lines(client: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    with client.stream("POST", "/api/pull", json=body) as response:
        raw = list(response.iter_lines())
    assert all(line for line in raw), "ndjson never has blank lines"
    return response, [json.loads(line) for line in raw]


def test_root_and_version(client: httpx.Client) -> None:
    root = client.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"].startswith("text/plain")
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""
    version = client.get("/api/version")
    assert version.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version.json()["version"])


def test_tags_lists_installed_models_newest_first(client: httpx.Client) -> None:
    models = client.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["gemma3:270m", "llama3.2:1b"]
    entry = models[1]
    assert set(entry) == {"name", "model", "modified_at", "size", "digest", "details", "capabilities"}
    assert entry["capabilities"] == ["completion", "tools"]
    assert entry["model"] == entry["name"]
    assert RFC3339_NANO.match(entry["modified_at"])
    assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
    assert entry["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "1.2B",
        "quantization_level": "Q4_K_M",
    }


def test_show(client: httpx.Client) -> None:
    reply = client.post("/api/show", json={"model": "gemma3:270m"})
    assert reply.status_code == 200
    body = reply.json()
    assert {
        "license",
        "modelfile",
        "parameters",
        "template",
        "details",
        "model_info",
        "capabilities",
        "modified_at",
        "system",
    } <= set(body)
    assert body["model_info"]["general.architecture"] == "gemma3"
    assert body["model_info"]["gemma3.context_length"] == 32768
    assert 'SYSTEM """You are a helpful assistant."""' in body["modelfile"]
    # A model without a system prompt has no "system" key (Go's omitempty).
    assert "system" not in client.post("/api/show", json={"model": "llama3.2:1b"}).json()


def test_show_errors(client: httpx.Client) -> None:
    missing = client.post("/api/show", json={"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope:latest' not found"})
    empty = client.post("/api/show", content=b"")
    assert (empty.status_code, empty.json()) == (400, {"error": "missing request body"})
    no_model = client.post("/api/show", json={})
    assert (no_model.status_code, no_model.json()) == (400, {"error": "model is required"})
    wrong_type = client.post("/api/show", json={"model": 7})
    assert wrong_type.status_code == 400 and "cannot unmarshal" in wrong_type.json()["error"]


def test_router_errors_are_plain_text(client: httpx.Client) -> None:
    unknown = client.get("/api/nothing")
    assert (unknown.status_code, unknown.text) == (404, "404 page not found")
    assert unknown.headers["content-type"] == "text/plain"
    wrong = client.get("/api/pull")
    assert wrong.status_code == 405 and "method not allowed" in wrong.text
    assert wrong.headers["allow"] == "POST"
    assert client.post("/api/tags").headers["allow"] == "GET, HEAD"
    assert client.post("/api/delete", json={"model": "x"}).headers["allow"] == "DELETE"


def test_pull_streams_ndjson_progress_per_layer(server: OllamaServer, client: httpx.Client) -> None:
    response, lines = pull_lines(client, {"model": "tiny"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["transfer-encoding"] == "chunked"
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-3:] == [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
    layers = server.layers_of("tiny")
    progress = lines[1:-3]
    assert list(dict.fromkeys(p["digest"] for p in progress)) == [layer.digest for layer in layers]
    for layer in layers:
        mine = [p for p in progress if p["digest"] == layer.digest]
        assert all(HEX12.match(p["status"]) and p["status"] == f"pulling {layer.digest[7:19]}" for p in mine)
        assert all(p["total"] == layer.size for p in mine)
        done = [p.get("completed", 0) for p in mine]
        assert done == sorted(done) and done[-1] == layer.size
        # completed is left out while it is 0 (Go's omitempty), never sent as 0
        assert all(p.get("completed", 1) != 0 for p in mine)
    weights = [p for p in progress if p["digest"] == layers[0].digest]
    assert "completed" not in weights[0] and len(weights) > 5
    assert "tiny:latest" in server.installed_names()


def test_pull_of_an_installed_model_reports_each_layer_once_complete(
    client: httpx.Client, server: OllamaServer
) -> None:
    _, lines = pull_lines(client, {"model": "llama3.2:1b"})
    progress = [line for line in lines if "digest" in line]
    assert len(progress) == len(server.layers_of("llama3.2:1b"))
    assert all(p["completed"] == p["total"] for p in progress)


def test_pull_of_an_unknown_model_fails_mid_stream_with_status_200(client: httpx.Client) -> None:
    response, lines = pull_lines(client, {"model": "no-such-model"})
    assert response.status_code == 200
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]


def test_pull_without_streaming(client: httpx.Client) -> None:
    ok = client.post("/api/pull", json={"model": "tiny", "stream": False})
    assert (ok.status_code, ok.json()) == (200, {"status": "success"})
    unknown = client.post("/api/pull", json={"model": "no-such-model", "stream": False})
    assert (unknown.status_code, unknown.json()) == (500, {"error": "pull model manifest: file does not exist"})


@pytest.mark.parametrize("name", ["bad name", "Ünïcode", "a:b:c", "-leading", ""])
def test_pull_rejects_invalid_names(client: httpx.Client, name: str) -> None:
    reply = client.post("/api/pull", json={"model": name})
    assert (reply.status_code, reply.json()) == (400, {"error": "invalid model name"})


def test_a_cancelled_pull_keeps_its_bytes_and_the_next_one_resumes(server: OllamaServer, client: httpx.Client) -> None:
    weights = server.layers_of("tiny")[0]
    server.bytes_per_tick = 50_000
    seen = 0
    with client.stream("POST", "/api/pull", json={"model": "tiny"}) as response:
        for line in response.iter_lines():
            seen = json.loads(line).get("completed", seen)
            if seen >= 500_000:
                break  # leaving the with-block closes the connection: Ollama's "cancel"
    kept = server.blob_bytes(weights.digest)
    assert 500_000 <= kept < weights.size
    _, lines = pull_lines(client, {"model": "tiny"})
    first = next(line for line in lines if line.get("digest") == weights.digest)
    assert first["completed"] >= kept
    assert lines[-1] == {"status": "success"}


def test_disk_full_fails_mid_download(server: OllamaServer, client: httpx.Client) -> None:
    server.disk_free = 1_000_000
    weights = server.layers_of("tiny")[0]
    response, lines = pull_lines(client, {"model": "tiny"})
    assert response.status_code == 200
    assert lines[-1] == {
        "error": f"write {MODELS_DIR}/blobs/sha256-{weights.digest[7:]}-partial: no space left on device"
    }
    assert lines[-2]["completed"] <= 1_000_000
    assert server.blob_bytes(weights.digest) == 1_000_000  # what did fit stays on disk
    assert "tiny:latest" not in server.installed_names()


def test_drop_switch_cuts_the_connection_mid_pull(server: OllamaServer, client: httpx.Client) -> None:
    server.drop_pulls(after_lines=3)
    with pytest.raises(httpx.RemoteProtocolError):
        pull_lines(client, {"model": "tiny"})
    assert pull_lines(client, {"model": "tiny"})[1][-1] == {"status": "success"}


def test_delete_takes_a_json_body(server: OllamaServer, client: httpx.Client) -> None:
    ok = client.request("DELETE", "/api/delete", json={"model": "gemma3:270m"})
    assert (ok.status_code, ok.content) == (200, b"")
    assert server.installed_names() == ["llama3.2:1b"]
    again = client.request("DELETE", "/api/delete", json={"model": "gemma3:270m"})
    assert (again.status_code, again.json()) == (404, {"error": "model 'gemma3:270m' not found"})
    no_body = client.delete("/api/delete")
    assert (no_body.status_code, no_body.json()) == (400, {"error": "missing request body"})


def test_copy(server: OllamaServer, client: httpx.Client) -> None:
    ok = client.post("/api/copy", json={"source": "llama3.2:1b", "destination": "mine"})
    assert ok.status_code == 200
    assert "mine:latest" in server.installed_names()
    missing = client.post("/api/copy", json={"source": "nope", "destination": "x"})
    assert (missing.status_code, missing.json()) == (404, {"error": 'model "nope" not found'})


def test_load_and_unload_through_generate(server: OllamaServer, client: httpx.Client) -> None:
    loaded = client.post("/api/generate", json={"model": "llama3.2:1b", "stream": True})
    assert loaded.headers["content-type"].startswith("application/json")  # one object, not a stream
    assert loaded.json()["done_reason"] == "load" and loaded.json()["done"] is True
    running = client.get("/api/ps").json()["models"]
    assert [m["name"] for m in running] == ["llama3.2:1b"]
    assert {"name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"} <= set(
        running[0]
    )
    assert RFC3339_NANO.match(running[0]["expires_at"])
    assert running[0]["size_vram"] == running[0]["size"]
    unloaded = client.post("/api/generate", json={"model": "llama3.2:1b", "keep_alive": 0})
    assert unloaded.json()["done_reason"] == "unload"
    assert client.get("/api/ps").json() == {"models": []}


def test_generate_errors(client: httpx.Client) -> None:
    missing = client.post("/api/generate", json={"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})
    no_unit = client.post("/api/generate", json={"model": "llama3.2:1b", "keep_alive": "300"})
    assert (no_unit.status_code, no_unit.json()) == (400, {"error": 'time: missing unit in duration "300"'})
    no_model = client.post("/api/chat", json={"messages": []})
    assert (no_model.status_code, no_model.json()) == (400, {"error": "model is required"})


def test_chat_streams_a_canned_reply(client: httpx.Client) -> None:
    body = {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "hi"}]}
    with client.stream("POST", "/api/chat", json=body) as response:
        lines = [json.loads(line) for line in response.iter_lines()]
    assert "".join(line["message"]["content"] for line in lines) == "Hello from the test server."
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert all(line["done"] is False for line in lines[:-1])


def test_bearer_key_check() -> None:
    with OllamaServer(api_key="k-123") as srv:
        assert httpx.get(f"{srv.base_url}/api/tags").status_code == 401
        assert httpx.get(f"{srv.base_url}/api/tags", headers={"authorization": "Bearer wrong"}).json() == {
            "error": "unauthorized"
        }
        assert httpx.get(f"{srv.base_url}/api/tags", headers={"authorization": "Bearer k-123"}).status_code == 200


def test_names_and_keep_alive_like_ollama() -> None:
    assert short_name("llama3.2") == "llama3.2:latest"
    assert short_name("library/llama3.2:1b") == "llama3.2:1b"
    assert short_name("registry.ollama.ai/library/qwen2.5:0.5b") == "qwen2.5:0.5b"
    assert short_name("me/custom:v1") == "me/custom:v1"
    assert short_name("bad name") is None
    assert parse_keep_alive(0) == 0 and parse_keep_alive("5m") == 300 and parse_keep_alive("1h30m") == 5400
    assert parse_keep_alive(-1) < 0 and parse_keep_alive("-1m") < 0
    with pytest.raises(ValueError, match="missing unit"):
        parse_keep_alive("300")


def test_runs_as_a_subprocess_printing_its_port() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.ollama_server", "--installed", "tiny"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("PORT=")
        tags = httpx.get(f"http://127.0.0.1:{line[5:]}/api/tags", timeout=10).json()
        assert [m["name"] for m in tags["models"]] == ["tiny:latest"]
    finally:
        proc.terminate()  # this child only
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_fault_switches_fail_as_ollama_does(server: OllamaServer, client: httpx.Client) -> None:
    server.install("nomic-embed-text")
    for path in ("/api/chat", "/api/generate"):
        refused = client.post(path, json={"model": "nomic-embed-text", "messages": [], "prompt": "hi"})
        verb = "chat" if path == "/api/chat" else "generate"
        assert (refused.status_code, refused.json()) == (400, {"error": f'"nomic-embed-text" does not support {verb}'})
    unload = client.post("/api/generate", json={"model": "nomic-embed-text", "keep_alive": 0})
    assert unload.json()["done_reason"] == "unload"  # Ollama unloads before it checks capabilities

    server.tags_error = (500, "model list cache unavailable")
    failed = client.get("/api/tags")
    assert (failed.status_code, failed.json()) == (500, {"error": "model list cache unavailable"})
    server.tags_error = None

    server.registry_error = "pull model manifest: dial tcp: lookup registry.ollama.ai: no such host"
    assert pull_lines(client, {"model": "tiny"})[1] == [
        {"status": "pulling manifest"},
        {"error": server.registry_error},
    ]
    server.registry_error = None

    server.digest_mismatch = True
    weights = server.layers_of("tiny")[0]
    lines = pull_lines(client, {"model": "tiny"})[1]
    assert lines[-2] == {"status": "verifying sha256 digest"}
    assert lines[-1]["error"].startswith(f"digest mismatch, file must be downloaded again: want {weights.digest}")
    assert server.blob_bytes(weights.digest) == 0 and "tiny:latest" not in server.installed_names()


def test_a_full_disk_can_take_the_partial_file_back(server: OllamaServer, client: httpx.Client) -> None:
    server.disk_free, server.disk_full_rollback = 1_000_000, True
    weights = server.layers_of("tiny")[0]
    lines = pull_lines(client, {"model": "tiny"})[1]
    assert lines[-1]["error"].endswith("no space left on device")
    assert server.blob_bytes(weights.digest) == 0 and server.disk_free == 1_000_000
