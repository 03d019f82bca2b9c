"""Unit fixtures shared by several modules: the LiteLLM engine, the loopback fault server with an
account on it, the model catalog with the HTTP client it sends through, and the account service
(plus `compatible` and `one_sentence`, which the catalog tests import).

A module that tests against another server (Anthropic, Ollama) defines its own `server`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.litellm_engine import LiteLLMEngine
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore
from tests.servers.openai_fault import FaultServer


@pytest.fixture(scope="module")
def engine() -> Iterator[LiteLLMEngine]:
    # One engine (one thread, one loop, one LiteLLM import) for the module; each test's own
    # pytest-asyncio loop only receives events from it, exactly as the Qt loop does in the app.
    engine = LiteLLMEngine()
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture
def llm(engine: LiteLLMEngine) -> LLMService:
    return LLMService(engine=engine)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The loopback OpenAI-compatible server; it accepts the key "sk-test" only."""
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def account(server: FaultServer) -> Account:
    return Account(provider_id="openai_compatible", label="Fault lab", base_url=server.base_url)


# --- the model catalog -----------------------------------------------------------------------------


def compatible(base_url: str, label: str = "Fault lab") -> Account:
    return Account(provider_id="openai_compatible", label=label, base_url=base_url)


def one_sentence(text: str) -> bool:
    return text.endswith(".") and "\n" not in text


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "models.json"


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request the catalog's client sends, as httpx built it (URL with its query)."""
    return []


@pytest_asyncio.fixture
async def http(sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}, trust_env=False) as client:
        yield client


@pytest.fixture
def catalog(http: httpx.AsyncClient, cache_file: Path) -> ModelCatalog:
    """A catalog without LiteLLM: what the provider lists, and its cache."""
    return ModelCatalog(http=http, cache_file=cache_file)


@pytest_asyncio.fixture
async def settings(tmp_path: Path) -> AsyncIterator[SettingsService]:
    """The settings service on a settings file of its own (tmp_path / "settings.json")."""
    store = SettingsStore(tmp_path / "settings.json")
    yield SettingsService(store=store, settings=Settings())
    await store.close()


@pytest_asyncio.fixture
async def secrets() -> AsyncIterator[SecretStore]:
    """The SecretStore on the (in-memory) keyring."""
    secrets = SecretStore()
    await secrets.start()
    yield secrets
    await secrets.close()


@pytest.fixture
def accounts(catalog: ModelCatalog, settings: SettingsService, secrets: SecretStore) -> AccountService:
    """The account service on the `settings` service and the `secrets` store."""
    return AccountService(settings=settings, secrets=secrets, catalog=catalog)


@pytest_asyncio.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and reads requests, but never answers a byte."""
    handlers: set[asyncio.Task[Any]] = set()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.read()  # until the client gives up and closes
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await server.wait_closed()
