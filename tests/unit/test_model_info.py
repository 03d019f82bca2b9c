"""Model details from LiteLLM's bundled map, and the one-line summary the window shows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.models import ModelInfo
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.model_info import model_info_from, ollama_model_info
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.ollama_server import OllamaServer

FIELDS = ("context_window", "max_output", "vision", "tools", "json_schema", "input_usd_per_mtok", "output_usd_per_mtok")


def all_unknown(info: ModelInfo) -> bool:
    return all(getattr(info, name) is None for name in FIELDS) and not info.known


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def catalog(http: httpx.AsyncClient, tmp_path: Path, engine: LiteLLMEngine) -> ModelCatalog:
    return ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=engine.litellm)


def account(provider_id: str) -> Account:
    return Account(provider_id=provider_id, label=provider_id.title())


# --- what the bundled map says ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_id", "model", "map_key"),
    [
        ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("openai", "gpt-4o-mini", "gpt-4o-mini"),
        ("gemini", "gemini-2.5-flash", "gemini/gemini-2.5-flash"),  # the map prefixes some providers
    ],
)
@pytest.mark.asyncio
async def test_a_known_model_has_what_litellms_map_says(
    catalog: ModelCatalog, engine: LiteLLMEngine, provider_id: str, model: str, map_key: str
) -> None:
    info = await catalog.model_info(account(provider_id), model)

    entry = (await engine.litellm()).model_cost[map_key]
    assert info.model == model
    assert info.context_window == entry["max_input_tokens"] and info.context_window > 0
    assert info.max_output == entry["max_output_tokens"] and info.max_output > 0
    assert info.input_usd_per_mtok == pytest.approx(entry["input_cost_per_token"] * 1_000_000)
    assert info.output_usd_per_mtok == pytest.approx(entry["output_cost_per_token"] * 1_000_000)
    assert info.input_usd_per_mtok > 0 and info.output_usd_per_mtok > 0
    assert (info.vision, info.tools, info.json_schema) == (
        entry.get("supports_vision"),
        entry.get("supports_function_calling"),
        entry.get("supports_response_schema"),
    )


@pytest.mark.asyncio
async def test_claude_sonnet_4_5_in_one_line(catalog: ModelCatalog) -> None:
    info = await catalog.model_info(account("anthropic"), "claude-sonnet-4-5")

    assert info.summary() == "200K context · 64K out · vision · tools · JSON schema · $3.00 / $15.00 per M tokens"


@pytest.mark.parametrize(
    ("provider_id", "model"),
    [
        ("anthropic", "claude-does-not-exist"),
        ("openai", "gpt-nonexistent-9"),
        ("mistral", ""),
    ],
)
@pytest.mark.asyncio
async def test_an_unknown_model_is_all_none(catalog: ModelCatalog, provider_id: str, model: str) -> None:
    info = await catalog.model_info(account(provider_id), model)

    assert info.model == model
    assert all_unknown(info)
    assert info.summary() == ""


@pytest.mark.asyncio
async def test_a_guessed_entry_gets_no_prices(catalog: ModelCatalog, engine: LiteLLMEngine) -> None:
    # The map has no OpenRouter rows; LiteLLM generalises from a sibling model and says 0 for the
    # prices it does not know, which must not read as "free".
    litellm = await engine.litellm()
    raw = litellm.get_model_info(model="anthropic/claude-sonnet-4.5", custom_llm_provider="openrouter")
    assert raw["key"] not in litellm.model_cost and raw["input_cost_per_token"] == 0

    info = await catalog.model_info(account("openrouter"), "anthropic/claude-sonnet-4.5")
    assert (info.input_usd_per_mtok, info.output_usd_per_mtok) == (None, None)
    assert info.context_window == raw["max_input_tokens"]
    assert "free" not in info.summary() and "$" not in info.summary()


# --- when LiteLLM is not asked at all --------------------------------------------------------------


async def must_not_load() -> ModuleType:
    raise AssertionError("LiteLLM must not be loaded for this")


@pytest.mark.asyncio
async def test_local_and_proxy_models_are_not_looked_up(http: httpx.AsyncClient, tmp_path: Path) -> None:
    # A local server's "gpt-4o" is not OpenAI's, and LiteLLM's Ollama lookup would POST to a server.
    catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=must_not_load)
    for provider_id, model in (
        ("openai_compatible", "gpt-4o"),
        ("litellm_proxy", "claude-sonnet-4-5"),
        ("llamacpp", "gemma"),
    ):
        assert all_unknown(await catalog.model_info(account(provider_id), model))


@pytest.mark.asyncio
async def test_without_litellm_or_when_it_fails_to_load_everything_is_unknown(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async def broken() -> ModuleType:
        raise ImportError("litellm is not installed")

    for loader in (None, broken):
        catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=loader)
        assert all_unknown(await catalog.model_info(account("anthropic"), "claude-sonnet-4-5"))


@pytest.mark.asyncio
async def test_the_lookup_runs_off_the_callers_thread_and_any_failure_is_unknown(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    # LiteLLM's first lookup in a process takes ~95 ms: too long for the GUI loop.
    threads: list[int] = []
    fake = ModuleType("fake_litellm")

    def get_model_info(model: str, custom_llm_provider: str | None = None) -> dict[str, Any]:
        threads.append(threading.get_ident())
        if model == "explodes":
            raise RuntimeError("anything at all")
        return {"key": model, "max_input_tokens": 1000, "max_output_tokens": 10}

    fake.get_model_info = get_model_info  # type: ignore[attr-defined]
    fake.model_cost = {}  # type: ignore[attr-defined]

    async def load() -> ModuleType:
        return fake

    catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=load)
    info = await catalog.model_info(account("openai"), "tiny")
    assert (info.context_window, info.max_output, info.input_usd_per_mtok) == (1000, 10, None)
    assert all_unknown(await catalog.model_info(account("openai"), "explodes"))
    assert threads and threading.get_ident() not in threads


def test_the_pure_lookup_never_raises_on_odd_values() -> None:
    fake = ModuleType("fake_litellm")
    fake.get_model_info = lambda model, custom_llm_provider=None: {  # type: ignore[attr-defined]
        "key": model,
        "max_input_tokens": "lots",
        "max_output_tokens": True,
        "supports_vision": "yes",
    }
    fake.model_cost = {"odd": {"input_cost_per_token": "cheap", "output_cost_per_token": None}}  # type: ignore[attr-defined]

    assert all_unknown(model_info_from(fake, account("openai").provider, "odd"))


# --- the summary -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "text"),
    [
        (
            ModelInfo("claude-sonnet-4-5", 200_000, 64_000, True, True, True, 3.0, 15.0),
            "200K context · 64K out · vision · tools · JSON schema · $3.00 / $15.00 per M tokens",
        ),
        (
            ModelInfo("gpt-4o-mini", 128_000, 16_384, True, True, True, 0.15, 0.6),
            "128K context · 16K out · vision · tools · JSON schema · $0.15 / $0.60 per M tokens",
        ),
        (
            ModelInfo("gemini", 1_048_576, 65_535, True, None, False, 0.075, 0.3),
            "1M context · 64K out · vision · $0.075 / $0.30 per M tokens",
        ),
        (ModelInfo("deepseek-chat", 131_072, 8_192), "128K context · 8K out"),
        (ModelInfo("big", 2_000_000, 100_000, tools=True), "2M context · 100K out · tools"),
        (ModelInfo("odd", 1_500_000, 4_000), "1.5M context · 4K out"),
        (ModelInfo("tiny", 512), "512 context"),
        (ModelInfo("free", input_usd_per_mtok=0.0, output_usd_per_mtok=0.0), "free"),
        (ModelInfo("half-priced", 8_000, input_usd_per_mtok=1.0), "8K context"),  # both prices or none
        (ModelInfo("no-such-model"), ""),
    ],
)
def test_the_summary_names_only_what_is_known(info: ModelInfo, text: str) -> None:
    assert info.summary() == text
    assert "\n" not in info.summary()


def test_known_means_anything_at_all() -> None:
    assert not ModelInfo("x").known
    assert ModelInfo("x", vision=False).known


# --- kept on disk ------------------------------------------------------------------------------------


class CountingLoader:
    """The engine's loader, counting how often the catalog asked for LiteLLM."""

    def __init__(self, engine: LiteLLMEngine) -> None:
        self.engine = engine
        self.calls = 0

    async def __call__(self) -> ModuleType:
        self.calls += 1
        return await self.engine.litellm()


@pytest.mark.asyncio
async def test_details_asked_again_after_a_restart_come_from_disk_without_litellm(
    http: httpx.AsyncClient, tmp_path: Path, engine: LiteLLMEngine
) -> None:
    first_loader = CountingLoader(engine)
    first = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=first_loader)
    shown = await first.model_info(account("anthropic"), "claude-sonnet-4-5")
    assert first_loader.calls == 1 and shown.known
    await first.aclose()  # quitting writes what is not on disk yet

    again_loader = CountingLoader(engine)  # the next start: a new catalog on the same files
    again = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=again_loader)
    assert await again.model_info(account("anthropic"), "claude-sonnet-4-5") == shown
    assert again_loader.calls == 0
    assert await again.model_info(account("openai"), "gpt-4o-mini") != ModelInfo("gpt-4o-mini")
    assert again_loader.calls == 1  # a model not asked before still comes from LiteLLM


@pytest.mark.asyncio
async def test_details_of_two_models_asked_at_once_are_both_kept(
    http: httpx.AsyncClient, tmp_path: Path, engine: LiteLLMEngine
) -> None:
    """The picker asks for the first model shown and, a moment later, the one picked: both writes
    of the file carry what was known, and the later state is the one left on disk."""
    first = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=CountingLoader(engine))
    haiku, sonnet = await asyncio.gather(
        first.model_info(account("anthropic"), "claude-haiku-4-5"),
        first.model_info(account("anthropic"), "claude-sonnet-4-5"),
    )
    await first.aclose()

    loader = CountingLoader(engine)
    again = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=loader)
    assert await again.model_info(account("anthropic"), "claude-haiku-4-5") == haiku
    assert await again.model_info(account("anthropic"), "claude-sonnet-4-5") == sonnet
    assert loader.calls == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "kept",
    [
        '{"litellm": "0.0.1", "providers": {"anthropic": {"claude-sonnet-4-5": {"context_window": 1}}}}',
        "{broken",
        '{"litellm": "%s", "providers": {"anthropic": {"claude-sonnet-4-5": {"context_window": 1}}}}',
    ],
    ids=["another-litellm-version", "not-json", "missing-fields"],
)
async def test_details_kept_by_another_litellm_or_damaged_are_asked_of_litellm_again(
    http: httpx.AsyncClient, tmp_path: Path, engine: LiteLLMEngine, kept: str
) -> None:
    from importlib.metadata import version

    (tmp_path / "model-info.json").write_text(kept.replace("%s", version("litellm")) if "%s" in kept else kept)
    loader = CountingLoader(engine)
    catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=loader)
    info = await catalog.model_info(account("anthropic"), "claude-sonnet-4-5")
    assert loader.calls == 1 and info.context_window is not None and info.context_window > 1


# --- what an Ollama server says of its models ------------------------------------------------------


@pytest.mark.asyncio
async def test_an_ollama_model_is_what_its_servers_show_says_it_can_do(http: httpx.AsyncClient, tmp_path: Path) -> None:
    catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=must_not_load)
    with OllamaServer(installed=("gemma3:4b", "gemma3:270m", "llama3.2:1b")) as server:
        ollama = Account(provider_id="ollama", label="Ollama", base_url=server.base_url)
        seeing = await catalog.model_info(ollama, "gemma3:4b")
        blind = await catalog.model_info(ollama, "gemma3:270m")
        tools = await catalog.model_info(ollama, "llama3.2:1b")
        assert (seeing.vision, seeing.tools, seeing.summary()) == (True, False, "vision")
        assert (blind.vision, blind.tools, blind.summary()) == (False, False, "")
        assert (tools.vision, tools.tools) == (False, True)
        # The training context Ollama reports is not the window a chat gets (num_ctx): not given.
        assert seeing.context_window is None
        asked = [r.json()["model"] for r in server.requests if r.path == "/api/show"]
        assert asked == ["gemma3:4b", "gemma3:270m", "llama3.2:1b"]

        await catalog.model_info(ollama, "gemma3:4b")  # kept...
        assert len([r for r in server.requests if r.path == "/api/show"]) == 3
        await catalog.fetch_models(ollama, None)  # ...until the server's models are listed again
        await catalog.model_info(ollama, "gemma3:4b")
        assert len([r for r in server.requests if r.path == "/api/show"]) == 4

        # A model the server does not have (404) is unknown, not an error.
        assert all_unknown(await catalog.model_info(ollama, "llava:7b"))
    # A server that is gone: unknown too, and nothing is raised.
    assert all_unknown(await catalog.model_info(ollama, "gemma3:270m"))


def test_an_ollama_too_old_to_list_capabilities_says_nothing() -> None:
    assert all_unknown(ollama_model_info("llama3", {"details": {"family": "llama"}}))
    assert all_unknown(ollama_model_info("llama3", None))
    assert ollama_model_info("llava", {"capabilities": ["completion", "vision"]}).vision is True
