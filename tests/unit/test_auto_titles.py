"""Automatic titles: after the first reply the conversation's own model names it (a request in usage
like any other), only where the setting allows, never over a name the user gave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams
from desktop_app.domain.settings import Settings
from desktop_app.domain.tools import ToolCall
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.chat.titles import MAX_CHARS, PROMPT, Titles, clean_title
from desktop_app.services.litellm_engine import LiteLLMEngine
from desktop_app.services.settings import SettingsService
from tests.servers.openai_fault import FaultServer
from tests.unit.sqlite_stores import store_fixtures
from tests.unit.test_chat_service import KEY

db_path, store = store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest_asyncio.fixture
async def usage(tmp_path: Path) -> AsyncIterator[UsageStore]:
    usage = UsageStore(tmp_path / "usage.sqlite3")
    await usage.open()
    yield usage
    await usage.close()


@pytest_asyncio.fixture
async def secrets(account: Account) -> AsyncIterator[SecretStore]:
    secrets = SecretStore()  # the autouse fixture made the keyring an in-memory one
    await secrets.set(account.id, KEY)
    yield secrets
    await secrets.close()


@pytest_asyncio.fixture
async def chat(
    engine: LiteLLMEngine,
    store: ConversationStore,
    secrets: SecretStore,
    account: Account,
    usage: UsageStore,
    settings: SettingsService,
) -> ChatService:
    await settings.update(accounts=[account])
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: settings.current,
        usage=usage,
        timeout_s=lambda: 30.0,
    )
    titles = Titles(dispatcher=dispatcher, store=store, settings=settings)
    return ChatService(dispatcher=dispatcher, store=store, titles=titles)


async def first_turn(chat: ChatService, account: Account, text: str = "Tell me about   penguins"):
    conversation = await chat.store.create_conversation(
        title=DEFAULT_TITLE, account_id=account.id, model="ok", params=ChatParams()
    )
    [_ async for _ in chat.reply(conversation, text)]
    return conversation


def test_the_models_answer_becomes_a_short_clean_title() -> None:
    assert clean_title('\n  "Emperor penguins in Antarctica."\nMore text') == "Emperor penguins in Antarctica"
    assert clean_title("Title: **Leek soup**") == "Leek soup"
    long = clean_title("word " * 40)
    assert len(long) <= MAX_CHARS and not long.endswith(" ") and long.startswith("word word")
    assert clean_title("  \n ") == ""


@pytest.mark.asyncio
async def test_after_the_first_reply_the_model_names_the_conversation_and_usage_records_it(
    chat: ChatService, account: Account, server: FaultServer, usage: UsageStore
) -> None:
    conversation = await first_turn(chat, account)
    assert conversation.title == "Tell me about penguins"
    assert chat.titles is not None and chat.titles.mode == "local"  # the loopback costs nothing

    title = await chat.titles.name(conversation)

    assert title and title.startswith("word0 word1") and len(title) <= MAX_CHARS
    assert (await chat.store.get_conversation(conversation.id)).title == title == conversation.title
    asked = server.requests[-1].json()["messages"]
    assert asked[0] == {"role": "user", "content": "Tell me about   penguins"}
    assert asked[-1] == {"role": "user", "content": PROMPT}
    assert [r.model for r in await usage.records()] == ["ok", "ok"]  # the reply, then the title
    # Only after the first reply: a second turn asks nothing more.
    [_ async for _ in chat.reply(conversation, "And seals?")]
    sent = len(server.requests)
    assert await chat.titles.name(conversation) is None
    assert len(server.requests) == sent


@pytest.mark.asyncio
async def test_a_name_the_user_gave_is_kept(chat: ChatService, account: Account, server: FaultServer) -> None:
    conversation = await first_turn(chat, account)
    await chat.store.rename_conversation(conversation.id, "Birds")
    conversation.title = "Birds"
    sent = len(server.requests)
    assert await chat.titles.name(conversation) is None
    assert len(server.requests) == sent
    assert (await chat.store.get_conversation(conversation.id)).title == "Birds"


@pytest.mark.asyncio
async def test_paid_models_are_asked_only_when_the_setting_says_so(
    chat: ChatService, account: Account, settings: SettingsService
) -> None:
    cloud = Account(provider_id="anthropic", label="Claude")
    await settings.update(accounts=[account, cloud])
    titles = chat.titles
    local = await chat.store.create_conversation(title="x", account_id=account.id, model="ok")
    paid = await chat.store.create_conversation(title="x", account_id=cloud.id, model="claude-haiku-4-5")
    assert (titles.wanted(local), titles.wanted(paid)) == (True, False)
    await titles.set_mode("all")
    assert (titles.wanted(local), titles.wanted(paid)) == (True, True)
    await titles.set_mode("off")
    assert (titles.wanted(local), titles.wanted(paid)) == (False, False)
    assert settings.current.auto_titles == "off"
    assert Settings().auto_titles == "local"


@pytest.mark.asyncio
async def test_a_reply_that_calls_tools_is_not_followed_by_a_title_request(
    chat: ChatService, account: Account, server: FaultServer
) -> None:
    conversation = await chat.store.create_conversation(title="Weather in Paris", account_id=account.id, model="ok")
    await chat.store.add_message(conversation.id, role="user", content="Weather in Paris")
    reply = await chat.store.add_message(conversation.id, role="assistant", content="")
    await chat.store.update_message(reply.id, tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),))
    assert await chat.titles.name(conversation) is None
    assert server.requests == []
