"""Tool calling through the real ChatService, LLMService and LiteLLM, against the strict loopback
OpenAI and Anthropic servers (LiteLLM's own adapter turns the calls into tool_use / tool_result)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished, StreamEvent, TextDelta
from desktop_app.domain.conversations import Conversation, MessageStatus
from desktop_app.domain.settings import Settings
from desktop_app.domain.tools import ToolCallDelta, ToolCalls, ToolSpec
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.openai_fault import FaultServer

WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolSpec(
    name="get_time",
    parameters={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
)
# provider -> (server, account, key, model, chat path)
PROVIDERS: dict[str, tuple[Any, Any, str, str, str]] = {
    "openai": (
        FaultServer,
        lambda s: Account(provider_id="openai", label="OpenAI", base_url=s.base_url),
        "sk-test",
        "gpt-4o",
        "/v1/chat/completions",
    ),
    "anthropic": (
        AnthropicServer,
        lambda s: Account(provider_id="anthropic", label="Claude", base_url=s.base_url),
        "sk-ant-test-a",
        "claude-sonnet-4-5",
        "/v1/messages",
    ),
}


class Stack:
    def __init__(self, provider: str, server: Any, chat: ChatService, store: ConversationStore, account: Account):
        self.provider, self.server, self.chat, self.store, self.account = provider, server, chat, store, account
        self.model, self.path = PROVIDERS[provider][3], PROVIDERS[provider][4]

    async def conversation(self, params: ChatParams, model: str = "") -> Conversation:
        return await self.store.create_conversation(
            title=DEFAULT_TITLE, account_id=self.account.id, model=model or self.model, params=params
        )

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.server.requests if r.path == self.path]


@pytest.fixture(scope="module")
def engine() -> Iterator[LiteLLMEngine]:
    engine = LiteLLMEngine()
    engine.start()
    yield engine
    engine.stop()


@pytest_asyncio.fixture(params=list(PROVIDERS))
async def stack(request: pytest.FixtureRequest, engine: LiteLLMEngine, tmp_path: Path) -> AsyncIterator[Stack]:
    make_server, make_account, key, _, _ = PROVIDERS[request.param]
    secrets = SecretStore()  # the autouse fixture made the keyring an in-memory one
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    await store.open()
    with make_server() as server:
        account = make_account(server)
        await secrets.set(account.id, key)
        dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=secrets,
            states=AccountStates(),
            settings=lambda: Settings(accounts=[account]),
            timeout_s=lambda: 30.0,
        )
        yield Stack(request.param, server, ChatService(dispatcher=dispatcher, store=store), store, account)
    await store.close()
    await secrets.close()


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def calls_of(events: list[StreamEvent]) -> ToolCalls:
    [calls] = [e for e in events if isinstance(e, ToolCalls)]
    return calls


@pytest.mark.asyncio
async def test_calls_stream_are_stored_and_the_results_bring_the_answer(stack: Stack) -> None:
    conversation = await stack.conversation(ChatParams(tools=(WEATHER, TIME)))
    events = await collect(stack.chat.reply(conversation, "Weather and time in Paris?"))

    # The calls arrived piece by piece, then whole, before the reply finished.
    assert any(isinstance(e, ToolCallDelta) and e.name == "get_weather" for e in events)
    assert sum(isinstance(e, ToolCallDelta) for e in events) >= 2
    calls = calls_of(events).calls
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"zone": "Paris"}),
    ]
    assert isinstance(events[-1], Finished) and events[-1].finish_reason in ("tool_calls", "tool_use")
    _, reply = await stack.store.messages(conversation.id)
    assert reply.tool_calls == calls and reply.status is MessageStatus.COMPLETE
    assert reply.metrics.completion_tokens

    results = [(calls[0].id, '{"sky": "clear"}'), (calls[1].id, "12:00")]
    answer = await collect(await stack.chat.answer_tool_calls(conversation, results))
    text = "".join(e.text for e in answer if isinstance(e, TextDelta))
    assert text == 'Tool said: {"sky": "clear"} Tool said: 12:00 '
    stored = await stack.store.messages(conversation.id)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [m.tool_call_id for m in stored[2:4]] == [calls[0].id, calls[1].id]
    assert stored[-1].metrics.completion_tokens  # every round is counted

    first, second = stack.bodies()
    if stack.provider == "openai":
        assert first["tools"] == [WEATHER.as_openai(), TIME.as_openai()]
        assert second["messages"][1].get("content") is None  # null, or left out: no empty text
        assert second["messages"][1]["tool_calls"] == [c.as_openai() for c in calls]
        assert second["messages"][2:] == [
            {"role": "tool", "tool_call_id": calls[0].id, "content": '{"sky": "clear"}'},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "12:00"},
        ]
    else:
        assert [t["name"] for t in first["tools"]] == ["get_weather", "get_time"]
        assert first["tools"][0]["input_schema"] == WEATHER.parameters
        uses = [b for b in second["messages"][1]["content"] if b["type"] == "tool_use"]
        assert [(b["id"], b["name"], b["input"]) for b in uses] == [
            (c.id, c.name, json.loads(c.arguments)) for c in calls
        ]
        results_sent = [b for b in second["messages"][2]["content"] if b["type"] == "tool_result"]
        assert [b["tool_use_id"] for b in results_sent] == [calls[0].id, calls[1].id]


@pytest.mark.asyncio
async def test_several_rounds_of_calls_each_answered(stack: Stack) -> None:
    model = {"openai": "tools-2", "anthropic": "claude-sonnet-4-5-tools-2"}[stack.provider]
    conversation = await stack.conversation(ChatParams(tools=(WEATHER,)), model=model)
    first = calls_of(await collect(stack.chat.reply(conversation, "Go"))).calls
    second = calls_of(await collect(await stack.chat.answer_tool_calls(conversation, [(first[0].id, "rain")]))).calls
    assert second[0].id != first[0].id
    answer = await collect(await stack.chat.answer_tool_calls(conversation, [(second[0].id, "sun")]))
    assert "".join(e.text for e in answer if isinstance(e, TextDelta)) == "Tool said: sun "
    roles = [m.role for m in await stack.store.messages(conversation.id)]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert len(stack.bodies()) == 3


@pytest.mark.asyncio
async def test_one_function_forced_and_no_parallel_calls_are_sent_as_asked(stack: Stack) -> None:
    params = ChatParams(tools=(WEATHER, TIME), tool_choice="get_time", parallel_tool_calls=False)
    conversation = await stack.conversation(params)
    calls = calls_of(await collect(stack.chat.reply(conversation, "Time?"))).calls
    assert [c.name for c in calls] == ["get_time"]
    [body] = stack.bodies()
    if stack.provider == "openai":
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
        assert body["parallel_tool_calls"] is False
    else:
        assert body["tool_choice"] == {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}


@pytest.mark.asyncio
async def test_no_tool_choice_gets_a_text_answer(stack: Stack) -> None:
    conversation = await stack.conversation(ChatParams(tools=(WEATHER,), tool_choice="none"))
    events = await collect(stack.chat.reply(conversation, "Just talk"))
    assert not any(isinstance(e, (ToolCalls, ToolCallDelta)) for e in events)
    assert isinstance(events[-1], Finished)


@pytest.mark.asyncio
async def test_a_stored_tool_turn_survives_reopening_and_a_branch(stack: Stack, tmp_path: Path) -> None:
    conversation = await stack.conversation(ChatParams(tools=(WEATHER,)))
    calls = calls_of(await collect(stack.chat.reply(conversation, "Weather?"))).calls
    await collect(await stack.chat.answer_tool_calls(conversation, [(calls[0].id, "fog")]))
    reopened = ConversationStore(tmp_path / "conversations.sqlite3")  # read back from the file
    await reopened.open()
    try:
        stored = await reopened.messages(conversation.id)
        assert (await reopened.get_conversation(conversation.id)).params.tools == (WEATHER,)
    finally:
        await reopened.close()
    assert stored[1].tool_calls == calls and stored[2].tool_call_id == calls[0].id
    branch = await stack.store.branch(stored[-1].id)
    copied = await stack.store.messages(branch.id)
    assert copied[1].tool_calls == calls and copied[2].tool_call_id == calls[0].id
    # The branch goes on: the copied calls and results are sent as they were.
    await collect(stack.chat.reply(branch, "And tomorrow?"))
    assert stack.bodies()[-1]["messages"][1:3] == stack.bodies()[1]["messages"][1:3]


@pytest.mark.asyncio
async def test_calls_left_unanswered_are_not_sent_when_the_user_writes_on(stack: Stack) -> None:
    conversation = await stack.conversation(ChatParams(tools=(WEATHER,), tool_choice="none"))
    await collect(stack.chat.reply(conversation, "Hi"))  # a reply in words first
    conversation.params = ChatParams(tools=(WEATHER,))
    calls = calls_of(await collect(stack.chat.reply(conversation, "Weather?"))).calls
    assert calls
    # The user ignores the calls and writes on: the strict servers would refuse calls without results.
    conversation.params = ChatParams(tools=(WEATHER,), tool_choice="none")
    events = await collect(stack.chat.reply(conversation, "Never mind, just say hello"))
    assert isinstance(events[-1], Finished), events[-1]
    last = stack.bodies()[-1]
    # Hi, its answer, Weather?, Never mind (Anthropic's two user turns in one): the call-only reply left out.
    assert len(last["messages"]) == {"openai": 4, "anthropic": 3}[stack.provider]
    assert "tool_calls" not in json.dumps(last["messages"]) and "tool_use" not in json.dumps(last["messages"])
