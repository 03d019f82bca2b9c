"""The newer chat parameters: what they send, which models take them (LiteLLM's word, checked against
the installed version), what is refused before sending, and that they reach a server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished, Notice, ReasoningEffort, Started
from desktop_app.domain.param_support import PANEL_PARAMS, shown_params, taken_params
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.chat.llm import LLMService, _Request, _split_supported
from desktop_app.services.chat.preflight import params_refusal
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.openai_fault import FaultServer
from tests.unit.test_llm_service import KEY, collect, stream
from tests.unit.test_model_info import must_not_load

THINKING = {"type": "enabled", "budget_tokens": 2048}


def test_each_parameter_is_sent_by_its_request_name_and_none_is_sent_unset() -> None:
    assert ChatParams().request_options() == {}
    params = ChatParams(
        top_k=40,
        max_completion_tokens=300,
        presence_penalty=0.5,
        frequency_penalty=-1.0,
        reasoning_effort=ReasoningEffort.HIGH,
        preset="Terse",  # a record of where the values came from: never sent
    )
    assert params.request_options() == {
        "top_k": 40,
        "max_completion_tokens": 300,
        "presence_penalty": 0.5,
        "frequency_penalty": -1.0,
        "reasoning_effort": "high",
    }


def test_a_thinking_budget_is_sent_instead_of_a_reasoning_effort() -> None:
    # LiteLLM sends only the budget when it is given both; the record must say what went out.
    options = ChatParams(reasoning_effort="low", thinking_budget=2048).request_options()
    assert options == {"thinking": THINKING}


@pytest.mark.parametrize(
    "bad",
    [
        {"thinking_budget": 1023},
        {"presence_penalty": 2.5},
        {"frequency_penalty": -2.1},
        {"top_k": 0},
        {"max_completion_tokens": 0},
        {"reasoning_effort": "extreme"},
    ],
)
def test_values_no_provider_takes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        ChatParams(**bad)


def test_parameters_stored_by_an_older_build_still_open_and_the_new_ones_round_trip() -> None:
    old = ChatParams.model_validate_json('{"system_prompt": "Be brief.", "temperature": 0.3}')
    assert old.thinking_budget is None and old.preset == ""
    new = ChatParams(top_k=5, thinking_budget=4096, reasoning_effort="medium", preset="Careful")
    assert ChatParams.model_validate_json(new.model_dump_json()) == new


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        (ChatParams(thinking_budget=2048, max_tokens=2048), "must be less than max tokens (2,048)"),
        (ChatParams(thinking_budget=4096, max_completion_tokens=1024), "must be less than max tokens (1,024)"),
    ],
)
def test_what_extended_thinking_refuses_is_refused_before_sending(params: ChatParams, sentence: str) -> None:
    problem = params_refusal(params)
    assert problem is not None and sentence in problem.message and problem.action


def test_a_thinking_budget_below_max_tokens_is_not_refused() -> None:
    assert params_refusal(ChatParams(thinking_budget=2048, max_tokens=4096, temperature=0.5)) is None


@pytest.mark.parametrize(
    "params",
    [
        ChatParams(thinking_budget=2048, temperature=0.5, top_k=5, top_p=0.9),
        ChatParams(reasoning_effort="low", temperature=0.5, top_k=5, top_p=0.9),  # LiteLLM makes it a budget
    ],
    ids=["budget", "effort"],
)
@pytest.mark.asyncio
async def test_what_claude_refuses_while_it_thinks_is_left_out_and_said(llm: LLMService, params: ChatParams) -> None:
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        events = await collect(stream(llm, account, "claude-sonnet-4-5", params=params, api_key="sk-ant-test-a"))
        body = server.requests[-1].json()

    assert isinstance(events[-1], Finished), events[-1]
    assert "thinking" in body and not {"temperature", "top_k", "top_p"} & body.keys()
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert notice.text == (
        "Left out temperature, top_k, top_p: claude-sonnet-4-5 takes no top_k, no temperature but 1 and no top_p"
        " under 0.95 while it thinks."
    )
    # The stored request says what went out.
    started = next(e for e in events if isinstance(e, Started))
    assert started.request is not None and not {"temperature", "top_k", "top_p"} & started.request.params.keys()


@pytest.mark.asyncio
async def test_what_claude_takes_while_it_thinks_is_sent(llm: LLMService) -> None:
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        params = ChatParams(thinking_budget=2048, temperature=1, top_p=0.95)
        events = await collect(stream(llm, account, "claude-sonnet-4-5", params=params, api_key="sk-ant-test-a"))
        body = server.requests[-1].json()
    assert isinstance(events[-1], Finished) and not any(isinstance(e, Notice) for e in events)
    assert (body["temperature"], body["top_p"]) == (1, 0.95)


# --- which models take what (LiteLLM's lists, plus top_k where documented) ---------------------------


def test_top_k_is_taken_where_the_providers_api_documents_it() -> None:
    for provider_id in ("anthropic", "gemini", "ollama", "llamacpp", "vllm", "lmstudio", "openrouter"):
        assert "top_k" in taken_params(provider_id, ["temperature"])
    for provider_id in ("openai", "openai_compatible", "groq", "mistral", "deepseek", "xai"):
        assert "top_k" not in taken_params(provider_id, ["temperature"])


def test_the_reasoning_rows_show_only_for_reasoning_models_and_the_budget_only_for_claude() -> None:
    listed = ["temperature", "reasoning_effort", "thinking", "seed"]
    assert shown_params("anthropic", listed, True) == ("temperature", "top_k", "reasoning_effort", "thinking", "seed")
    assert shown_params("anthropic", listed, False) == ("temperature", "top_k", "seed")
    assert shown_params("gemini", listed, True) == ("temperature", "top_k", "reasoning_effort", "seed")
    assert set(shown_params("openai", ["n", "tools", "stream"], None)) <= set(PANEL_PARAMS)


@pytest.mark.parametrize(
    ("provider_id", "model", "shown", "hidden"),
    [
        (
            "anthropic",
            "claude-sonnet-4-5",
            {"top_k", "max_completion_tokens", "reasoning_effort", "thinking", "temperature"},
            {"seed", "presence_penalty", "frequency_penalty"},
        ),
        (
            "openai",
            "gpt-4o",
            {"presence_penalty", "frequency_penalty", "seed", "max_completion_tokens"},
            {"top_k", "reasoning_effort", "thinking"},
        ),
        ("openai", "o3-mini", {"reasoning_effort", "max_completion_tokens"}, {"top_p", "top_k", "thinking"}),
    ],
)
@pytest.mark.asyncio
async def test_the_catalog_says_which_rows_a_model_takes(
    tmp_path: Path, engine: LiteLLMEngine, provider_id: str, model: str, shown: set[str], hidden: set[str]
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=engine.litellm)
        info = await catalog.model_info(Account(provider_id=provider_id, label="x"), model)
        assert info.params is not None
        assert shown <= set(info.params) and not hidden & set(info.params)
        # Kept on disk (written at quit at the latest): the next start gets the same rows without LiteLLM.
        await catalog.aclose()
        again = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=must_not_load)
        assert (await again.model_info(Account(provider_id=provider_id, label="x"), model)) == info


@pytest.mark.asyncio
async def test_a_local_models_rows_are_unknown_so_all_show(tmp_path: Path, engine: LiteLLMEngine) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json", litellm=engine.litellm)
        info = await catalog.model_info(Account(provider_id="llamacpp", label="x"), "gemma")
    assert info.params is None


def _request(provider_id: str, model: str, params: ChatParams) -> _Request:
    return _Request(
        account=Account(provider_id=provider_id, label="x"),
        api_key=None,
        model=model,
        timeout_s=5.0,
        messages=[],
        options=params.request_options(),
    )


def test_top_k_is_kept_for_claude_and_llama_cpp_and_left_out_for_openai(engine: LiteLLMEngine) -> None:
    litellm = engine.wait_loaded(120)
    params = ChatParams(top_k=40, temperature=0.5)
    assert _split_supported(litellm, _request("anthropic", "claude-sonnet-4-5", params)) == (
        {"top_k": 40, "temperature": 0.5},
        (),
    )
    assert _split_supported(litellm, _request("llamacpp", "gemma", params))[1] == ()
    assert _split_supported(litellm, _request("openai", "gpt-4o", params)) == ({"temperature": 0.5}, ("top_k",))


def test_a_thinking_budget_goes_to_claude_and_not_to_gpt_4o(engine: LiteLLMEngine) -> None:
    litellm = engine.wait_loaded(120)
    params = ChatParams(thinking_budget=2048)
    assert _split_supported(litellm, _request("anthropic", "claude-sonnet-4-5", params)) == ({"thinking": THINKING}, ())
    assert _split_supported(litellm, _request("openai", "gpt-4o", params)) == ({}, ("thinking",))


@pytest.mark.asyncio
async def test_the_newer_parameters_reach_the_server_and_what_it_cannot_take_is_named(
    llm: LLMService, server: FaultServer
) -> None:
    account = Account(provider_id="openai_compatible", label="Fault lab", base_url=server.base_url)
    params = ChatParams(
        top_k=40, max_completion_tokens=12, presence_penalty=0.5, frequency_penalty=0.25, reasoning_effort="minimal"
    )
    events = await collect(stream(llm, account, "ok", params=params))

    assert isinstance(events[0], Started) and events[0].dropped_params == ("top_k",)
    body = server.requests[-1].json()
    assert {k: body.get(k) for k in ("max_completion_tokens", "presence_penalty", "frequency_penalty")} == {
        "max_completion_tokens": 12,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
    }
    assert body["reasoning_effort"] == "minimal" and "top_k" not in body
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
