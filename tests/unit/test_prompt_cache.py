"""Prompt caching through the real LLMService and LiteLLM: the breakpoints Anthropic receives, and the
cache tokens (and what they saved) in the reply's metrics, from Anthropic's and OpenAI's usage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatMessage, ChatParams, Finished, StreamEvent, UsageReport
from desktop_app.domain.prompt_cache import with_cache_breakpoints
from desktop_app.services.chat.llm import LLMService
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.openai_fault import FaultServer

LONG_SYSTEM = " ".join(f"rule{i}" for i in range(1100))
EPHEMERAL = {"type": "ephemeral"}
HISTORY = [
    ChatMessage("user", "What is a prefix?"),
    ChatMessage("assistant", "The start of something."),
    ChatMessage("user", "And a suffix?"),
]


async def reply(
    llm: LLMService, account: Account, model: str, key: str, params: ChatParams, messages: Sequence[ChatMessage]
) -> list[StreamEvent]:
    events: AsyncIterator[StreamEvent] = llm.stream_chat(
        account=account, api_key=key, model=model, messages=messages, params=params, timeout_s=30.0
    )
    return [event async for event in events]


def finished(events: list[StreamEvent]) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def test_breakpoints_go_on_the_system_prompt_and_the_last_history_message() -> None:
    sent = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "three"},
    ]
    marked = with_cache_breakpoints(sent)
    assert marked[0]["content"] == [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    assert marked[2]["content"] == [{"type": "text", "text": "two", "cache_control": EPHEMERAL}]
    assert marked[1]["content"] == "one" and marked[3]["content"] == "three"  # the new turn is not marked
    assert sent[0]["content"] == "Be brief."  # the caller's list is left as it was
    assert with_cache_breakpoints([{"role": "user", "content": "only"}]) == [{"role": "user", "content": "only"}]


@pytest.mark.asyncio
async def test_anthropic_receives_breakpoints_and_the_metrics_count_the_cache(llm: LLMService) -> None:
    params = ChatParams(system_prompt=LONG_SYSTEM, cache_prompt=True)
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        first = finished(await reply(llm, account, "claude-sonnet-4-5", "sk-ant-test-a", params, HISTORY))
        body = server.requests[-1].json()
        second = finished(await reply(llm, account, "claude-sonnet-4-5", "sk-ant-test-a", params, HISTORY))

    assert body["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPHEMERAL}]
    marked = [(i, b) for i, m in enumerate(body["messages"]) for b in m["content"] if "cache_control" in b]
    assert marked == [(1, {"type": "text", "text": "The start of something.", "cache_control": EPHEMERAL})]
    written = first.metrics.cache_write_tokens
    assert written and written > 1024 and not first.metrics.cache_read_tokens
    assert first.metrics.cache_saved_usd is not None and first.metrics.cache_saved_usd < 0  # writing costs more
    assert second.metrics.cache_read_tokens == written and not second.metrics.cache_write_tokens
    # Claude Sonnet 4.5 in LiteLLM's map: input $3/M, cache reads $0.30/M: 90% of the read tokens' price saved.
    assert second.metrics.cache_saved_usd == pytest.approx(written * (3e-6 - 3e-7))
    assert second.metrics.cost_usd < first.metrics.cost_usd
    assert f"cache: {written:,} read, saved $" in second.metrics.summary()


@pytest.mark.asyncio
async def test_without_the_switch_no_breakpoint_is_sent(llm: LLMService) -> None:
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        done = finished(
            await reply(
                llm, account, "claude-sonnet-4-5", "sk-ant-test-a", ChatParams(system_prompt=LONG_SYSTEM), HISTORY
            )
        )
        body = server.requests[-1].json()
    assert "cache_control" not in str(body)
    assert not done.metrics.cache_read_tokens and not done.metrics.cache_write_tokens
    assert "cache:" not in done.metrics.summary()


@pytest.mark.asyncio
async def test_other_providers_are_sent_no_breakpoints(llm: LLMService, server: FaultServer) -> None:
    account = Account(provider_id="openai", label="OpenAI", base_url=server.base_url)
    params = ChatParams(system_prompt="Be brief.", cache_prompt=True)
    finished(await reply(llm, account, "ok", "sk-test", params, HISTORY))
    assert "cache_control" not in str(server.requests[-1].json())


@pytest.mark.asyncio
async def test_openai_cached_tokens_are_counted_and_priced(llm: LLMService, server: FaultServer) -> None:
    account = Account(provider_id="openai", label="OpenAI", base_url=server.base_url)
    params = ChatParams(system_prompt=LONG_SYSTEM)
    first = finished(await reply(llm, account, "gpt-4o-mini", "sk-test", params, HISTORY[:1]))
    events = await reply(llm, account, "gpt-4o-mini", "sk-test", params, HISTORY)
    second = finished(events)

    assert not first.metrics.cache_read_tokens
    read = second.metrics.cache_read_tokens
    assert read and read >= 1024 and read % 128 == 0
    usage = next(e for e in events if isinstance(e, UsageReport))
    assert usage.cache_read_tokens == read and usage.cache_write_tokens is None
    # gpt-4o-mini in LiteLLM's map: input $0.15/M, cached input $0.075/M.
    assert second.metrics.cache_saved_usd == pytest.approx(read * (1.5e-7 - 7.5e-8))
