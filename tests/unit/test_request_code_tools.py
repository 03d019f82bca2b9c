""" "View as code" of a tool turn: the request that sent the results (tools, the assistant's calls,
the tool messages) is stored, turned into snippets, and each snippet sends the loopback OpenAI or
Anthropic server exactly the body the app sent through LiteLLM."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished
from desktop_app.domain.request_code import request_snippets
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.settings import Settings
from desktop_app.domain.tools import ToolCalls, ToolSpec
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.openai_fault import FaultServer
from tests.unit.test_request_code_runs import _check_snippets, _runs_python_with

WEATHER = ToolSpec(
    name="get_weather",
    description="It's the weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
NOW = ToolSpec(name="now")


async def _tool_turn(
    server: Any, account: Account, key: str, model: str, params: ChatParams, tmp_path: Path
) -> SentRequest:
    """A question, the model's calls, the user's results and the answer; the answer's request as stored."""
    secrets = SecretStore()
    await secrets.set(account.id, key)
    engine = LiteLLMEngine()
    engine.start()
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    await store.open()
    try:
        dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=secrets,
            states=AccountStates(),
            settings=lambda: Settings(accounts=[account]),
            timeout_s=lambda: 30.0,
        )
        chat = ChatService(dispatcher=dispatcher, store=store)
        conversation = await store.create_conversation(
            title=DEFAULT_TITLE, account_id=account.id, model=model, params=params
        )
        events = [e async for e in chat.reply(conversation, "Weather, and the time?")]
        [calls] = [e for e in events if isinstance(e, ToolCalls)]
        results = [(c.id, f'{{"for": "{c.name}", "note": "it\'s $HOME"}}') for c in calls.calls]
        answer = [e async for e in await chat.answer_tool_calls(conversation, results)]
        assert isinstance(answer[-1], Finished)
        reply = (await store.messages(conversation.id))[-1]
    finally:
        await store.close()
        engine.stop()
        await secrets.close()
    assert reply.request is not None
    return reply.request


@pytest.mark.asyncio
async def test_the_snippets_of_an_openai_tool_turn_send_what_the_app_sent(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with FaultServer() as server:
        account = Account(provider_id="openai", label="OpenAI", base_url=server.base_url)
        params = ChatParams(tools=(WEATHER, NOW), tool_choice="required", parallel_tool_calls=False)
        request = await _tool_turn(server, account, "sk-test", "gpt-4o", params, tmp_path)

        assert request.params["tools"] == [WEATHER.as_openai(), NOW.as_openai()]
        assert request.params["tool_choice"] == "required" and request.params["parallel_tool_calls"] is False
        assert [m["role"] for m in request.messages] == ["user", "assistant", "tool"]
        assert [s.title for s in request_snippets(request)] == ["LiteLLM", "OpenAI SDK", "curl"]
        _check_snippets(server, request, "sk-test", {"authorization"})


@pytest.mark.asyncio
async def test_the_snippets_of_an_anthropic_tool_turn_send_what_the_app_sent(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with AnthropicServer() as server:
        account = Account(provider_id="anthropic", label="Claude", base_url=server.base_url)
        params = ChatParams(tools=(WEATHER, NOW))
        request = await _tool_turn(server, account, "sk-ant-test-a", "claude-sonnet-4-5", params, tmp_path)

        body = server.requests[-1].json()
        assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "tool_result"]
        not_run = () if _runs_python_with("anthropic") else ("Anthropic SDK",)
        _check_snippets(server, request, "sk-ant-test-a", {"x-api-key"}, not_run=not_run)
