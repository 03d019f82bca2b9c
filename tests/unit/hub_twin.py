"""Fixtures for the Hugging Face tests (loaded with `pytest_plugins`): the loopback Hub twin with
the real test GGUF and small split/synthetic models, `HF_ENDPOINT` pointed at it, and the app's
HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from desktop_app.services.http_client import http_client
from tests.servers.hf_hub import HfHubTwin
from tests.unit.hub_models import GATED, GEMMA, GEMMA_FILE, SMALL, SPLIT_PARTS, TOKEN, real_gguf, small_gguf


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
async def hub_http() -> AsyncIterator[httpx.AsyncClient]:
    """The app's shared HTTP client (proxy rules and all), as the Hub services get it."""
    async with http_client(timeout=httpx.Timeout(30.0)) as shared:
        yield shared
