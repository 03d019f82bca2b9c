"""ModelCatalog remembers: the model lists cached on disk, and the three tiers of `models()` (a
fresh cache, the provider, LiteLLM's bundled list) with the notice that says which one answered."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import AuthFailed, NoKey, TimedOut, Unreachable
from desktop_app.services.accounts import catalog as catalog_module
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.model_info import bundled_models
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.openai_fault import MODELS, FaultServer
from tests.unit.conftest import compatible, one_sentence

KEY = "sk-test"


# --- the cache -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_list_is_cached_on_disk_and_read_back_by_a_new_catalog(
    catalog: ModelCatalog, server: FaultServer, http: httpx.AsyncClient, cache_file: Path
) -> None:
    account = compatible(server.base_url)
    models = await catalog.fetch_models(account, KEY)
    await catalog.aclose()  # written on a worker thread; quitting waits for it

    assert catalog.cached_models(account.id) == models
    assert KEY not in cache_file.read_text("utf-8")
    assert json.loads(cache_file.read_text("utf-8"))[account.id]["models"] == list(models)
    assert [p.name for p in cache_file.parent.iterdir()] == [cache_file.name]  # no temp file left

    later = ModelCatalog(http=http, cache_file=cache_file)
    assert later.cached_models(account.id) == ()
    later.load_cache()
    assert later.cached_models(account.id) == models

    later.forget(account.id)
    await later.aclose()
    again = ModelCatalog(http=http, cache_file=cache_file)
    again.load_cache()
    assert again.cached_models(account.id) == ()


@pytest.mark.asyncio
async def test_lists_remembered_in_a_row_are_written_once_each_writer_is_free_the_latest_last(
    http: httpx.AsyncClient, cache_file: Path
) -> None:
    """The cache is written off the loop's thread, and what is on disk at the end is the latest."""
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    for n in range(20):
        catalog._remember("acct", tuple(f"model-{i}" for i in range(n + 1)))
    assert not cache_file.exists()  # nothing written on the caller's thread
    await catalog.aclose()
    assert json.loads(cache_file.read_text("utf-8"))["acct"]["models"] == [f"model-{i}" for i in range(20)]


def test_without_a_running_loop_the_cache_is_written_at_once(http: httpx.AsyncClient, cache_file: Path) -> None:
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    catalog._remember("acct", ("one",))
    assert json.loads(cache_file.read_text("utf-8"))["acct"]["models"] == ["one"]


@pytest.mark.parametrize(
    "content",
    ['{"half": ', "[1, 2, 3]", '{"acct": {"models": "not a list"}}', '{"acct": 7}', "\x00\xff"],
)
@pytest.mark.asyncio
async def test_a_corrupt_cache_file_is_ignored(http: httpx.AsyncClient, cache_file: Path, content: str) -> None:
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text(content, "utf-8", errors="surrogateescape")
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    catalog.load_cache()
    assert catalog.cached_models("acct") == ()


@pytest.mark.asyncio
async def test_a_missing_cache_file_is_an_empty_cache(http: httpx.AsyncClient, cache_file: Path) -> None:
    catalog = ModelCatalog(http=http, cache_file=cache_file)
    catalog.load_cache()
    assert catalog.cached_models("acct") == ()


# --- three tiers: a fresh cache, the provider, LiteLLM's bundled map ---------------------------------


class Clock:
    """The catalog's clock, moved by hand: cache ages without waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tiered(http: httpx.AsyncClient, cache_file: Path, clock: Clock, engine: LiteLLMEngine) -> ModelCatalog:
    return ModelCatalog(http=http, cache_file=cache_file, litellm=engine.litellm, clock=clock)


@pytest.fixture
def dead_port() -> Iterator[int]:
    with socket.socket() as sock:  # bound, never listening: every connection is refused
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.asyncio
async def test_a_fresh_cache_answers_without_a_request(
    tiered: ModelCatalog, server: FaultServer, clock: Clock, http: httpx.AsyncClient, cache_file: Path
) -> None:
    account = compatible(server.base_url)
    first = await tiered.models(account, KEY)
    assert (first.source, first.error, first.fetched_at) == ("provider", None, clock.now)
    assert first.models == tuple(sorted(MODELS))
    assert len(server.requests) == 1

    clock.now += catalog_module.CACHE_TTL_S - 1
    again = await tiered.models(account, KEY)
    assert (again.source, again.models, again.fetched_at) == ("cache", first.models, first.fetched_at)
    assert again.notice is None

    await tiered.aclose()  # quit
    restarted = ModelCatalog(http=http, cache_file=cache_file, clock=clock)  # the next start of the app
    restarted.load_cache()
    assert (await restarted.models(account, KEY)).source == "cache"
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_a_stale_cache_is_fetched_again(tiered: ModelCatalog, server: FaultServer, clock: Clock) -> None:
    account = compatible(server.base_url)
    await tiered.models(account, KEY)
    clock.now += catalog_module.CACHE_TTL_S

    stale = await tiered.models(account, KEY)
    assert (stale.source, stale.fetched_at) == ("provider", clock.now)
    assert len(server.requests) == 2
    assert (await tiered.models(account, KEY)).source == "cache"
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_refresh_and_a_changed_base_url_skip_the_cache(tiered: ModelCatalog, server: FaultServer) -> None:
    account = compatible(server.base_url)
    await tiered.models(account, KEY)

    assert (await tiered.models(account, KEY, refresh=True)).source == "provider"
    moved = account.model_copy(update={"base_url": server.base_url.replace("127.0.0.1", "localhost")})
    assert (await tiered.models(moved, KEY)).source == "provider"  # another server, another list
    assert len(server.requests) == 3


@pytest.mark.asyncio
async def test_an_unreachable_cloud_provider_falls_back_to_litellms_bundled_list(
    tiered: ModelCatalog, engine: LiteLLMEngine, dead_port: int, cache_file: Path
) -> None:
    account = Account(provider_id="anthropic", label="Claude", base_url=f"http://127.0.0.1:{dead_port}")
    result = await tiered.models(account, KEY)

    litellm = await engine.litellm()
    assert result.source == "bundled"
    assert isinstance(result.error, Unreachable) and f"127.0.0.1:{dead_port}" in result.error.message
    assert result.fetched_at is None
    assert "claude-sonnet-4-5" in result.models
    assert set(result.models) <= set(litellm.models_by_provider["anthropic"])
    assert list(result.models) == sorted(result.models)
    assert result.notice == "From LiteLLM's bundled list: the provider could not be reached."
    assert not cache_file.exists()  # the bundled list is not the account's: never cached as such


@pytest.mark.asyncio
async def test_the_bundled_list_holds_only_chat_models_named_as_the_provider_names_them(engine: LiteLLMEngine) -> None:
    litellm = await engine.litellm()
    openai = bundled_models(litellm, Account(provider_id="openai", label="o").provider)
    assert "gpt-4o-mini" in openai
    assert not [m for m in openai if "embedding" in m or "dall-e" in m or "tts" in m or "whisper" in m]
    mistral = bundled_models(litellm, Account(provider_id="mistral", label="m").provider)
    assert mistral and not [m for m in mistral if m.startswith("mistral/")]
    local = Account(provider_id="llamacpp", label="local").provider
    assert bundled_models(litellm, local) == ()


@pytest.mark.asyncio
async def test_an_unreachable_provider_offers_its_own_older_list_first(
    tiered: ModelCatalog, server: FaultServer, clock: Clock, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account(provider_id="openai", label="Cloud", base_url=server.base_url)
    listed = await tiered.models(account, KEY)
    clock.now += 3 * catalog_module.CACHE_TTL_S
    server.stop()  # the same URL, nobody answering any more

    older = await tiered.models(account, KEY)
    assert (older.source, older.models, older.fetched_at) == ("cache", listed.models, listed.fetched_at)
    assert isinstance(older.error, Unreachable)
    assert older.notice == "From the list saved earlier: the provider could not be reached."

    # A server that hangs is no different from one that is down.
    monkeypatch.setattr(catalog_module, "CHECK_TIMEOUT_S", 0.3)
    hanging = compatible(f"http://127.0.0.1:{silent_port}/v1")
    result = await tiered.models(hanging, KEY)
    assert (result.source, result.models) == ("provider", ())  # local: no bundled list to offer
    assert isinstance(result.error, TimedOut)


@pytest.mark.asyncio
async def test_a_rejected_key_gets_no_fallback_list(tiered: ModelCatalog, server: FaultServer) -> None:
    account = Account(provider_id="openai", label="Cloud", base_url=server.base_url)
    result = await tiered.models(account, "sk-revoked")

    assert (result.source, result.models) == ("provider", ())
    assert isinstance(result.error, AuthFailed)
    assert result.notice == result.error.message and one_sentence(result.notice)
    assert "sk-revoked" not in result.error.message


@pytest.mark.asyncio
async def test_an_account_without_its_key_is_not_listed(tiered: ModelCatalog, server: FaultServer) -> None:
    result = await tiered.models(Account(provider_id="openai", label="Cloud", base_url=server.base_url), None)

    assert (result.source, result.models) == ("provider", ())
    assert isinstance(result.error, NoKey) and one_sentence(result.error.message)
    assert server.requests == []


@pytest.mark.asyncio
async def test_without_litellm_an_unreachable_provider_gives_just_the_error(
    catalog: ModelCatalog, dead_port: int
) -> None:
    account = Account(provider_id="anthropic", label="Claude", base_url=f"http://127.0.0.1:{dead_port}")
    result = await catalog.models(account, KEY)

    assert (result.source, result.models) == ("provider", ())
    assert isinstance(result.error, Unreachable)
