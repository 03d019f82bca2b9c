"""First-run discovery: loopback fakes of Ollama and llama-server, env keys, GGUF folders."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from desktop_app.services.local.discovery import (
    LLAMA_SERVER_URL,
    Discovery,
    count_gguf,
    discover,
    llama_server_url,
    ollama_url,
)

OPENAI_KEY = "sk-proj-Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc"
GROQ_KEY = "gsk_Zx9Cv8Bn7Mq6Wd5Er4Tf3Yg2Uh1Ij0Ok"


@contextmanager
def fake_server(routes: dict[str, tuple[int, bytes, str]]) -> Iterator[str]:
    """GET path -> (status, body, content type) on 127.0.0.1; yields the root URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, content_type = routes.get(self.path, (404, b"not found", "text/plain"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def as_json(status: int, value: object) -> tuple[int, bytes, str]:
    return status, json.dumps(value).encode(), "application/json"


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.asyncio
async def test_finds_ollama_from_ollama_host_and_a_llama_server(tmp_path: Path) -> None:
    with (
        fake_server({"/api/version": as_json(200, {"version": "0.6.2"})}) as ollama,
        fake_server({"/health": as_json(200, {"status": "ok"})}) as llama,
    ):
        found = await discover(
            environ={"HOME": str(tmp_path), "OLLAMA_HOST": ollama.removeprefix("http://")},
            llama_server=llama,
            gguf_folders=[],
        )

    assert found.ollama is not None and (found.ollama.url, found.ollama.version) == (ollama, "0.6.2")
    assert found.llama_server is not None and found.llama_server.url == llama
    assert found.anything and found.env_keys == () and found.gguf_folders == ()


@pytest.mark.asyncio
async def test_a_llama_server_still_loading_its_model_counts(tmp_path: Path, dead_url: str) -> None:
    with fake_server({"/health": as_json(503, {"error": {"code": 503, "message": "Loading model"}})}) as llama:
        found = await discover(environ={"HOME": str(tmp_path)}, ollama=dead_url, llama_server=llama, gguf_folders=[])
    assert found.llama_server is not None and found.ollama is None


@pytest.mark.parametrize(
    "routes",
    [
        {"/api/version": (200, b"<html>a web app</html>", "text/html")},  # something else on the port
        {"/api/version": as_json(200, {"name": "not ollama"})},
        {"/api/version": as_json(500, {"version": "0.6.2"})},
        {},  # 404
    ],
)
@pytest.mark.asyncio
async def test_a_port_that_answers_like_something_else_is_not_ollama(tmp_path: Path, dead_url: str, routes) -> None:
    with fake_server(routes | {"/health": (200, b"OK", "text/plain")}) as other:
        found = await discover(environ={"HOME": str(tmp_path)}, ollama=other, llama_server=other, gguf_folders=[])
    assert found.ollama is None and found.llama_server is None and not found.anything


@pytest.mark.asyncio
async def test_a_version_with_a_bidi_override_is_shown_without_it(tmp_path: Path, dead_url: str) -> None:
    with fake_server({"/api/version": as_json(200, {"version": "0.6.2 \u202etsetal"})}) as ollama:
        found = await discover(environ={"HOME": str(tmp_path)}, ollama=ollama, llama_server=dead_url, gguf_folders=[])
    assert found.ollama is not None and found.ollama.version == "0.6.2 tsetal"


@pytest.mark.asyncio
async def test_nothing_listening_or_a_silent_server_is_nothing_found(
    tmp_path: Path, dead_url: str, silent_url: str
) -> None:
    found = await discover(
        environ={"HOME": str(tmp_path)}, ollama=dead_url, llama_server=silent_url, gguf_folders=[], timeout_s=0.2
    )
    assert found == Discovery()


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11500", "http://127.0.0.1:11500"),
        ("localhost:11434", "http://localhost:11434"),
        ("http://gpu-box:8000", "http://gpu-box:8000"),
    ],
)
def test_ollama_host_is_read_like_ollama_reads_it(value: str, url: str) -> None:
    assert ollama_url({"OLLAMA_HOST": value}) == url


def test_llama_server_address_follows_its_env_settings() -> None:
    assert llama_server_url({}) == LLAMA_SERVER_URL == "http://127.0.0.1:8080"
    assert llama_server_url({"LLAMA_ARG_PORT": "8181"}) == "http://127.0.0.1:8181"
    assert llama_server_url({"LLAMA_ARG_HOST": "0.0.0.0", "LLAMA_ARG_PORT": "9000"}) == "http://127.0.0.1:9000"
    assert llama_server_url({"LLAMA_ARG_PORT": "not a port"}) == LLAMA_SERVER_URL


@pytest.mark.asyncio
async def test_env_keys_are_found_and_never_in_the_repr(tmp_path: Path, dead_url: str) -> None:
    environ = {"HOME": str(tmp_path), "OPENAI_API_KEY": OPENAI_KEY, "GROQ_API_KEY": GROQ_KEY, "MISTRAL_API_KEY": "   "}
    found = await discover(environ=environ, ollama=dead_url, llama_server=dead_url, gguf_folders=[])

    assert [(k.provider_id, k.variable) for k in found.env_keys] == [
        ("openai", "OPENAI_API_KEY"),
        ("groq", "GROQ_API_KEY"),
    ]
    assert found.anything
    for secret in (OPENAI_KEY, GROQ_KEY):
        assert secret not in repr(found) and secret not in str(found)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


def test_gguf_files_are_counted_a_few_folders_deep(tmp_path: Path) -> None:
    llama_cache = tmp_path / "llama.cpp"
    touch(llama_cache / "gemma-3-270m-it-Q8_0.gguf")
    touch(llama_cache / "Qwen3-0.6B-Q4_K_M.GGUF")
    touch(llama_cache / "gemma-3-270m-it-Q8_0.gguf.json")  # llama.cpp's own metadata, not a model
    touch(llama_cache / "a" / "b" / "c" / "d" / "e" / "too-deep.gguf")

    hub = tmp_path / "hub"
    blob = touch(hub / "models--unsloth--gemma-3-270m-it-GGUF" / "blobs" / "3f1a9c")
    snapshot = hub / "models--unsloth--gemma-3-270m-it-GGUF" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "gemma-3-270m-it-Q4_K_M.gguf").symlink_to(blob)  # the hub's layout: a link to a blob
    (snapshot / "dangling.gguf").symlink_to(hub / "missing")

    lmstudio = tmp_path / "lmstudio"
    touch(lmstudio / "lmstudio-community" / "Qwen3-4B-GGUF" / "Qwen3-4B-Q4_K_M.gguf")
    (lmstudio / "linked").symlink_to(llama_cache, target_is_directory=True)  # links to folders: not followed

    assert count_gguf(llama_cache).count == 2
    assert count_gguf(hub).count == 1
    assert count_gguf(lmstudio).count == 1
    assert count_gguf(tmp_path / "missing").count == 0


def test_a_huge_folder_is_counted_in_part(tmp_path: Path) -> None:
    for index in range(30):
        touch(tmp_path / f"model-{index:02}.gguf")
    result = count_gguf(tmp_path, max_entries=10)
    assert result.partial and result.count <= 10


@pytest.mark.asyncio
async def test_the_usual_gguf_folders_come_from_the_environment(tmp_path: Path, dead_url: str) -> None:
    home = tmp_path / "home"
    touch(home / ".cache" / "llama.cpp" / "one.gguf")
    touch(home / ".lmstudio" / "models" / "pub" / "model" / "two.gguf")
    touch(home / ".lmstudio" / "models" / "pub" / "model" / "three.gguf")
    custom = tmp_path / "custom-cache"
    touch(custom / "four.gguf")
    (home / ".cache" / "huggingface" / "hub").mkdir(parents=True)  # exists, but empty: not listed
    environ = {"HOME": str(home), "LLAMA_CACHE": str(custom), "XDG_CACHE_HOME": str(home / ".cache")}

    found = await discover(environ=environ, ollama=dead_url, llama_server=dead_url)

    by_folder = {folder.path: folder.count for folder in found.gguf_folders}
    assert by_folder == {
        Path(os.path.abspath(custom)): 1,
        Path(os.path.abspath(home / ".cache" / "llama.cpp")): 1,
        Path(os.path.abspath(home / ".lmstudio" / "models")): 2,
    }
    assert found.gguf_count == 4 and found.anything
