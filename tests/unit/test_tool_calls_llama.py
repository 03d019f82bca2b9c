"""Tool calling against the real llama-server started with --jinja (the GGUF's own template), through
ChatService, LLMService and LiteLLM.

The 270M test model does not call tools: with the tools offered (even with tool_choice "required")
it answers in words. So this test holds llama-server to the request's shape: it takes the tools,
and a history holding the assistant's calls and the tool's result, and answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Failed, Finished
from desktop_app.domain.settings import Settings
from desktop_app.domain.tools import ToolCall, ToolSpec
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.llama import LlamaServer

WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    with LlamaServer(jinja=True) as server:
        yield server


@pytest.mark.asyncio
async def test_llama_server_with_jinja_takes_the_tools_and_a_history_of_calls_and_results(
    llama: LlamaServer, engine: LiteLLMEngine, tmp_path: Path
) -> None:
    account = Account(provider_id="llamacpp", label="Local llama", base_url=llama.base_url)
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=SecretStore(),
        states=AccountStates(),
        settings=lambda: Settings(accounts=[account]),
        timeout_s=lambda: 120.0,
    )
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    await store.open()
    try:
        chat = ChatService(dispatcher=dispatcher, store=store)
        params = ChatParams(tools=(WEATHER,), max_tokens=12, temperature=0.0)
        conversation = await store.create_conversation(
            title=DEFAULT_TITLE, account_id=account.id, model="gemma", params=params
        )
        events = [e async for e in chat.reply(conversation, "What is the weather in Paris?")]
        assert not any(isinstance(e, Failed) for e in events), events[-1]
        assert isinstance(events[-1], Finished)
        [_, reply] = await store.messages(conversation.id)
        assert reply.request is not None and reply.request.params["tools"] == [WEATHER.as_openai()]

        # A turn with a call and its result (as a model that calls would leave it): taken and answered.
        call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
        await store.update_message(reply.id, tool_calls=(call,))
        answer = [e async for e in await chat.answer_tool_calls(conversation, [(call.id, '{"sky": "clear"}')])]
        assert isinstance(answer[-1], Finished), answer[-1]
        last = (await store.messages(conversation.id))[-1]
        assert last.request is not None
        sent = last.request.messages
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[1]["tool_calls"] == [call.as_openai()] and sent[2]["tool_call_id"] == "call_1"
    finally:
        await store.close()
