"""Fixtures for the Hugging Face tests: the loopback Hub twin with the real test GGUF and small
split/synthetic models, `HF_ENDPOINT` pointed at it, and the app's client and services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from desktop_app.services.http_client import http_client
from desktop_app.services.local.hf_hub import HubClient
from tests.servers.hf_hub import HfHubTwin
from tests.servers.process import from_env_file
from tests.unit.gguf_files import STR, U32, Tensor, write_gguf

GEMMA = "ggml-org/gemma-3-270m-GGUF"
GEMMA_FILE = "gemma-3-270m-Q4_K_M.gguf"
SMALL = "tester/small-GGUF"
GATED = "tester/gated-GGUF"
SPLIT_PARTS = ("small-Q2_K-00001-of-00002.gguf", "small-Q2_K-00002-of-00002.gguf")
TOKEN = "hf_" + "x" * 34


def real_gguf() -> Path | None:
    value = os.environ.get("MODELDESK_TEST_GGUF") or from_env_file("MODELDESK_TEST_GGUF")
    if not value:
        main_env = Path("/work/main/.cache/test-servers.env")
        for line in main_env.read_text().splitlines() if main_env.is_file() else ():
            if line.startswith("MODELDESK_TEST_GGUF="):
                value = line.partition("=")[2]
    return Path(value) if value and Path(value).is_file() else None


def small_gguf(path: Path, *, split: tuple[int, int] | None = None, size_mb: int = 3) -> Path:
    """A valid little llama GGUF with random bytes (not a hole) as tensor data, so sha256 means something."""
    kvs = [
        ("general.architecture", STR, "llama"),
        ("general.name", STR, "Small"),
        ("llama.block_count", U32, 4),
        ("llama.embedding_length", U32, 256),
        ("llama.attention.head_count", U32, 4),
        ("llama.attention.head_count_kv", U32, 2),
        ("llama.context_length", U32, 2048),
    ]
    if split is not None:
        kvs += [("split.no", 4, split[0]), ("split.count", 4, split[1])]
    write_gguf(path, kvs, [Tensor("blk.0.weight", (size_mb * 2 * 1024 * 1024,))])
    with open(path, "r+b") as file:  # fill the tensor data: incompressible, so every byte counts
        file.seek(4096)
        file.write(os.urandom(path.stat().st_size - 4096))
    return path


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hub-files")
    files = {
        "small-Q8_0.gguf": small_gguf(folder / "small-Q8_0.gguf"),
        "small-Q4_K_M.gguf": small_gguf(folder / "small-Q4_K_M.gguf", size_mb=2),
    }
    for number, name in enumerate(SPLIT_PARTS):
        files[name] = small_gguf(folder / name, split=(number, 2), size_mb=1)
    (folder / "README.md").write_text("# small\n")
    files["README.md"] = folder / "README.md"
    return files


@pytest.fixture(scope="module")
def gemma_sha(model_files) -> tuple[Path, str] | None:
    from tests.servers.hf_hub import _sha256

    path = real_gguf()
    return (path, _sha256(path)) if path is not None else None


@pytest.fixture
def twin(model_files, gemma_sha, monkeypatch) -> Iterator[HfHubTwin]:
    server = HfHubTwin(page_size=2)
    small = server.repo(SMALL, downloads=10, likes=50, last_modified="2025-03-01T00:00:00.000Z", license="mit")
    for name, path in model_files.items():
        small.add(name, path)
    gated = server.repo(GATED, gated="manual", downloads=5, likes=1, granted={TOKEN})
    gated.add("small-Q8_0.gguf", model_files["small-Q8_0.gguf"])
    if gemma_sha is not None:
        gemma = server.repo(GEMMA, downloads=1000, likes=20, last_modified="2025-02-01T00:00:00.000Z")
        gemma.add(GEMMA_FILE, *gemma_sha)
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.base_url)
    yield server
    server.stop()


@pytest.fixture
def gemma(gemma_sha) -> tuple[Path, str]:
    if gemma_sha is None:
        pytest.skip("the Gemma GGUF is not provisioned (run `make servers`)")
    return gemma_sha


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout=httpx.Timeout(30.0)) as shared:
        yield shared


def hub_with(client: httpx.AsyncClient, token: str | None = None) -> HubClient:
    async def source() -> str | None:
        return token

    return HubClient(client, token=source)  # the endpoint comes from HF_ENDPOINT
