"""ChatService on a turn: regenerate, edit, delete, branch and switch versions, through the real store
and the loopback fault server."""

from __future__ import annotations

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import Finished
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.errors import BadRequest
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.service import ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.openai_fault import FaultServer
from tests.unit import test_chat_service as base
from tests.unit.sqlite_stores import store_fixtures
from tests.unit.test_chat_service import collect, new_conversation

db_path, store = store_fixtures(ConversationStore, "conversations.sqlite3")
secrets = base.secrets


@pytest.fixture
def chat(engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account) -> ChatService:
    return base.make_chat(engine, store, secrets, account)


def shown(messages) -> list[tuple[str, str, int, int]]:
    return [(m.role, m.content[:5], m.version, m.versions) for m in messages]


@pytest.mark.asyncio
async def test_regenerate_adds_a_version_of_the_reply_and_shows_it(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "ok")
    await collect(chat.reply(conversation, "first"))
    await collect(chat.reply(conversation, "second"))
    first_reply = (await store.messages(conversation.id))[1]

    events = await collect(await chat.regenerate(conversation, first_reply.id))

    assert isinstance(events[-1], Finished)
    messages = await store.messages(conversation.id)
    # The branch shown ends at the new answer to "first"; "second" stays on the old version's branch.
    assert [(m.role, m.version, m.versions) for m in messages] == [("user", 1, 1), ("assistant", 2, 2)]
    assert messages[1].status is MessageStatus.COMPLETE and messages[1].content.startswith("word0")
    assert await chat.show_version(messages[1].id, -1) == first_reply.id
    assert [m.content for m in await store.messages(conversation.id)][2] == "second"
    assert await chat.show_version(first_reply.id, -1) is None  # nothing before the first


@pytest.mark.asyncio
async def test_edit_adds_a_version_of_the_message_and_answers_it(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "ok")
    await collect(chat.reply(conversation, "first"))
    await collect(chat.reply(conversation, "second"))
    second = (await store.messages(conversation.id))[2]

    events = await collect(await chat.edit(conversation, second.id, "second, edited"))

    assert isinstance(events[-1], Finished)
    messages = await store.messages(conversation.id)
    assert [(m.role, m.content.split()[0], m.version, m.versions) for m in messages] == [
        ("user", "first", 1, 1),
        ("assistant", "word0", 1, 1),
        ("user", "second,", 2, 2),
        ("assistant", "word0", 1, 1),
    ]
    # The request answered the edited question, after the first turn.
    body = [r for r in server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert [m["content"] for m in body["messages"]][-1] == "second, edited"
    assert len(body["messages"]) == 3


@pytest.mark.asyncio
async def test_editing_the_first_message_starts_a_new_first_version(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "ok")
    await collect(chat.reply(conversation, "first"))
    first = (await store.messages(conversation.id))[0]
    await collect(await chat.edit(conversation, first.id, "first, again"))
    messages = await store.messages(conversation.id)
    assert [(m.content.split()[0], m.version, m.versions) for m in messages] == [("first,", 2, 2), ("word0", 1, 1)]


@pytest.mark.asyncio
async def test_an_empty_edit_is_refused_before_anything_is_stored(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "ok")
    await collect(chat.reply(conversation, "first"))
    first = (await store.messages(conversation.id))[0]
    with pytest.raises(BadRequest):
        await chat.edit(conversation, first.id, "   ")
    assert await store.versions(first.id) == [first.id]


@pytest.mark.asyncio
async def test_delete_turn_and_branch(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "ok")
    await collect(chat.reply(conversation, "first"))
    await collect(chat.reply(conversation, "second"))
    messages = await store.messages(conversation.id)

    assert await store.subtree_size(messages[1].id) == 3
    branch = await chat.branch(messages[1].id)
    assert [m.content for m in await store.messages(branch.id)] == [m.content for m in messages[:2]]
    assert branch.title.endswith("(branch)")

    assert await chat.delete_turn(messages[2].id) == 2
    assert [m.id for m in await store.messages(conversation.id)] == [m.id for m in messages[:2]]
