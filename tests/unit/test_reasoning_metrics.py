"""What a reply's metrics say of its reasoning: the tokens where the provider reports them and the
time from the first reasoning delta to the first answer delta, kept when the reply is stored."""

from __future__ import annotations

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished, ReasoningDelta, ReplyMetrics, TextDelta
from desktop_app.services.chat.llm import LLMService
from tests.servers.anthropic_fault import THINKING_PIECES, AnthropicServer
from tests.servers.ollama_chat import THINKING_PIECES as OLLAMA_THINKING
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fault import REASONING_PIECES, FaultServer
from tests.unit.test_llm_service import KEY, collect, stream


@pytest.mark.asyncio
async def test_claudes_thinking_is_timed_and_its_tokens_counted(llm: LLMService) -> None:
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        params = ChatParams(thinking_budget=2048, max_tokens=4096)
        events = await collect(stream(llm, account, "claude-sonnet-4-5", params=params, api_key="sk-ant-test-a"))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "".join(THINKING_PIECES)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(not isinstance(e, ReasoningDelta) for e in events[first_text:])
    finished = events[-1]
    assert isinstance(finished, Finished)
    metrics = finished.metrics
    print(metrics)
    assert metrics.thinking_s is not None and metrics.thinking_s >= 0
    assert ReplyMetrics.from_json(metrics.to_json()) == metrics


@pytest.mark.asyncio
async def test_a_reply_without_reasoning_has_no_thinking_figures(llm: LLMService) -> None:
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        events = await collect(stream(llm, account, "claude-sonnet-4-5", params=ChatParams(), api_key="sk-ant-test-a"))
    metrics = events[-1].metrics
    assert (metrics.thinking_s, metrics.reasoning_tokens, metrics.thinking_summary()) == (None, None, "")


def test_the_thinking_summary_reads_tokens_then_time() -> None:
    assert ReplyMetrics(reasoning_tokens=1234, thinking_s=3.21).thinking_summary() == "1,234 tokens, 3.2 s"
    assert ReplyMetrics(thinking_s=0.04).thinking_summary() == "0.0 s"
    assert ReplyMetrics.from_json({"ttft_s": 0.1}).thinking_s is None  # stored before these existed


@pytest.mark.asyncio
async def test_reasoning_content_is_streamed_apart_and_its_reported_tokens_kept(llm: LLMService) -> None:
    """An OpenAI-compatible server (DeepSeek, llama-server) that sends `reasoning_content`."""
    with FaultServer() as server:
        account = Account(provider_id="openai_compatible", label="DeepSeek", base_url=server.base_url)
        events = await collect(stream(llm, account, "reasoner", api_key=KEY))
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "".join(REASONING_PIECES)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).startswith("word0 ")
    metrics = events[-1].metrics
    assert metrics.reasoning_tokens == len(REASONING_PIECES) and metrics.thinking_s is not None
    assert metrics.thinking_summary().startswith(f"{len(REASONING_PIECES)} tokens, ")


@pytest.mark.asyncio
async def test_ollamas_thinking_is_streamed_apart_and_timed(llm: LLMService) -> None:
    """Ollama's `message.thinking`, asked for with `think` (LiteLLM sends it for a reasoning effort)."""
    with OllamaServer(installed=("gemma3:270m",)) as server:
        account = Account(provider_id="ollama", label="Local Ollama", base_url=server.base_url)
        params = ChatParams(reasoning_effort="low")
        events = await collect(stream(llm, account, "gemma3:270m", params=params, api_key=""))
        body = [r for r in server.requests if r.path == "/api/chat"][-1].json()  # LiteLLM may ask /api/show too
    assert body["think"] not in (None, False)
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "".join(OLLAMA_THINKING)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(not isinstance(e, ReasoningDelta) for e in events[first_text:])
    assert events[-1].metrics.thinking_s is not None
