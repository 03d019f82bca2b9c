"""ChatService: a turn through the real store, keyring, LLM service and the loopback fault server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import (
    ChatParams,
    Failed,
    Finished,
    Started,
    StreamEvent,
    TextDelta,
)
from desktop_app.domain.conversations import Conversation, MessageStatus
from desktop_app.domain.errors import ModelNotFound, ServerError
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.openai_fault import FaultServer
from tests.unit import sqlite_stores
from tests.unit.sqlite_stores import store_fixtures

KEY = "sk-test"
OK_TEXT = "".join(f"word{i} " for i in range(40))
SLOW_TEXT = "".join(f"word{i} " for i in range(500))


db_path, store = store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest_asyncio.fixture
async def secrets(account: Account) -> AsyncIterator[SecretStore]:
    secrets = SecretStore()  # the autouse fixture made the keyring an in-memory one
    await secrets.set(account.id, KEY)
    assert secrets.persistent
    yield secrets
    await secrets.close()


def make_chat(
    engine: LiteLLMEngine,
    store: ConversationStore,
    secrets: SecretStore,
    account: Account,
    *,
    save_interval_s: float = 0.5,
) -> ChatService:
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: Settings(accounts=[account]),
        timeout_s=lambda: 30.0,
    )
    return ChatService(dispatcher=dispatcher, store=store, save_interval_s=save_interval_s)


@pytest.fixture
def chat(engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account) -> ChatService:
    return make_chat(engine, store, secrets, account)


async def new_conversation(store: ConversationStore, account: Account, model: str) -> Conversation:
    return await store.create_conversation(title=DEFAULT_TITLE, account_id=account.id, model=model, params=ChatParams())


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.asyncio
async def test_a_reply_is_stored_complete_with_its_metrics(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "ok")
    events = await collect(chat.reply(conversation, "Hello there"))

    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    user, reply = await store.messages(conversation.id)
    assert (user.role, user.content, user.status) == ("user", "Hello there", MessageStatus.COMPLETE)
    assert (reply.role, reply.content, reply.status) == ("assistant", OK_TEXT, MessageStatus.COMPLETE)
    assert (reply.account_id, reply.model, reply.error) == (account.id, "ok", "")
    assert reply.metrics == events[-1].metrics
    assert reply.metrics.completion_tokens == 40
    assert reply.metrics.ttft_s is not None and reply.metrics.ttft_s > 0
    # The key came from the keyring; the history the server saw is the user's message.
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json()["messages"] == [{"role": "user", "content": "Hello there"}]


@pytest.mark.asyncio
async def test_the_partial_reply_is_saved_while_it_streams(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account
) -> None:
    chat = make_chat(engine, store, secrets, account, save_interval_s=0.05)
    conversation = await new_conversation(store, account, "slow")
    stream = chat.reply(conversation, "Take your time")
    received: list[StreamEvent] = []
    saved = ""
    async for event in stream:  # "slow" sends 500 chunks over ~10 s: far from finished here
        received.append(event)
        assert not isinstance(event, (Finished, Failed))
        if isinstance(event, TextDelta):
            reply = (await store.messages(conversation.id))[-1]
            assert reply.status is MessageStatus.STREAMING
            saved = reply.content
            if saved:
                break
    await stream.aclose()

    assert saved and text_of(received).startswith(saved)


@pytest.mark.asyncio
async def test_stopping_early_stores_the_partial_text_as_stopped(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "slow")
    stream = chat.reply(conversation, "Tell me everything")
    received: list[StreamEvent] = []
    async for event in stream:
        received.append(event)
        if sum(isinstance(e, TextDelta) for e in received) >= 5:
            break
    await stream.aclose()

    user, reply = await store.messages(conversation.id)
    assert user.content == "Tell me everything"
    assert reply.status is MessageStatus.STOPPED
    assert reply.content == text_of(received) and reply.content.startswith("word0 ")
    assert await asyncio.to_thread(server.client_disconnected.wait, 5)


@pytest.mark.asyncio
async def test_cancelling_the_consuming_task_stores_the_partial_text_as_stopped(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    # How the window stops a reply: it cancels the task that consumes the events.
    conversation = await new_conversation(store, account, "slow")
    received: list[StreamEvent] = []
    enough = asyncio.Event()

    async def consume() -> None:
        async for event in chat.reply(conversation, "Go on"):
            received.append(event)
            if sum(isinstance(e, TextDelta) for e in received) >= 5:
                enough.set()

    task = asyncio.create_task(consume())
    await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    _, reply = await store.messages(conversation.id)
    assert reply.status is MessageStatus.STOPPED
    # The cancel may land while the service saves a delta it has not handed on yet.
    assert reply.content.startswith(text_of(received))
    assert SLOW_TEXT.startswith(reply.content) and len(reply.content) < len(SLOW_TEXT)
    assert await asyncio.to_thread(server.client_disconnected.wait, 5)


@pytest.mark.asyncio
async def test_a_failure_is_stored_with_its_sentence_and_the_question_is_kept(
    chat: ChatService, store: ConversationStore, account: Account
) -> None:
    conversation = await new_conversation(store, account, "fault-500")
    events = await collect(chat.reply(conversation, "Will this work?"))

    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, ServerError)
    user, reply = await store.messages(conversation.id)
    assert (user.role, user.content) == ("user", "Will this work?")
    assert reply.status is MessageStatus.FAILED
    assert reply.error == f"{events[-1].error.message} {events[-1].error.action}"
    assert "HTTP 500" in reply.error and KEY not in reply.error


@pytest.mark.asyncio
async def test_a_cut_stream_keeps_the_partial_text_with_the_failure(
    chat: ChatService, store: ConversationStore, account: Account
) -> None:
    conversation = await new_conversation(store, account, "fault-cut")
    await collect(chat.reply(conversation, "Cut me off"))

    _, reply = await store.messages(conversation.id)
    assert reply.status is MessageStatus.FAILED
    assert reply.content == "".join(f"part{i} " for i in range(10))
    assert "cut before the reply finished" in reply.error


@pytest.mark.asyncio
async def test_retry_replaces_the_failed_reply(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "fault-cut")
    await collect(chat.reply(conversation, "Try twice"))
    user, failed = await store.messages(conversation.id)
    assert failed.status is MessageStatus.FAILED and failed.content

    # The server is fine again (another model stands in for it); the user presses Retry.
    conversation.model = "ok"
    await store.update_conversation_settings(
        conversation.id, account_id=account.id, model="ok", params=conversation.params
    )
    assert await chat.discard_unfinished_answer(conversation)
    assert [m.id for m in await store.messages(conversation.id)] == [user.id]
    events = await collect(chat.answer(conversation))

    assert isinstance(events[-1], Finished)
    messages = await store.messages(conversation.id)
    assert [(m.role, m.status) for m in messages] == [
        ("user", MessageStatus.COMPLETE),
        ("assistant", MessageStatus.COMPLETE),
    ]
    assert messages[0].id == user.id and messages[1].id != failed.id
    assert messages[1].content == OK_TEXT
    # Retry asked the question once, without the failed partial answer.
    assert server.requests[-1].json()["messages"] == [{"role": "user", "content": "Try twice"}]
    # A finished answer is not discarded by a second Retry.
    assert not await chat.discard_unfinished_answer(conversation)
    assert len(await store.messages(conversation.id)) == 2


@pytest.mark.asyncio
async def test_a_stopped_reply_is_history_for_the_next_turn_and_a_failed_one_is_not(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer
) -> None:
    conversation = await new_conversation(store, account, "fault-500")
    await collect(chat.reply(conversation, "First"))
    conversation.model = "ok"
    await collect(chat.reply(conversation, "Second"))

    assert server.requests[-1].json()["messages"] == [
        {"role": "user", "content": "First"},
        {"role": "user", "content": "Second"},
    ]
    await collect(chat.reply(conversation, "Third"))
    assert server.requests[-1].json()["messages"][-3:] == [
        {"role": "user", "content": "Second"},
        {"role": "assistant", "content": OK_TEXT},
        {"role": "user", "content": "Third"},
    ]


@pytest.mark.asyncio
async def test_the_first_user_message_becomes_the_title(
    chat: ChatService, store: ConversationStore, account: Account
) -> None:
    conversation = await new_conversation(store, account, "ok")
    first = "  What is   the capital\nof France, and why is it that city rather than another one?  "
    await collect(chat.reply(conversation, first))
    await collect(chat.reply(conversation, "And of Spain?"))

    expected = " ".join(first.split())[:48]
    assert expected == "What is the capital of France, and why is it tha"
    assert conversation.title == expected
    stored = await store.get_conversation(conversation.id)
    assert stored is not None and stored.title == expected


@pytest.mark.asyncio
async def test_a_conversation_with_a_title_keeps_it(
    chat: ChatService, store: ConversationStore, account: Account
) -> None:
    conversation = await store.create_conversation(title="Trip planning", account_id=account.id, model="ok")
    await collect(chat.reply(conversation, "Where first?"))

    stored = await store.get_conversation(conversation.id)
    assert stored is not None and stored.title == "Trip planning"


@pytest.mark.parametrize("which", ["no model", "unknown account"])
@pytest.mark.asyncio
async def test_without_a_model_the_message_is_refused_and_nothing_is_stored_or_sent(
    chat: ChatService, store: ConversationStore, account: Account, server: FaultServer, which: str
) -> None:
    # Refused before dispatch (see test_refused_before_dispatch.py): no failed reply is stored.
    if which == "no model":
        conversation = await new_conversation(store, account, "")
    else:
        conversation = await store.create_conversation(title=DEFAULT_TITLE, account_id="gone", model="ok")
    with pytest.raises(ModelNotFound) as refused:
        await collect(chat.reply(conversation, "Anyone there?"))

    assert refused.value.message == "No model is selected for this conversation."
    assert await store.messages(conversation.id) == []
    assert server.requests == []


@pytest.mark.asyncio
async def test_each_reply_stores_its_request_as_sent_referring_to_the_stored_messages(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account, server: FaultServer
) -> None:
    conversation = await store.create_conversation(
        title=DEFAULT_TITLE, account_id=account.id, model="ok", params=ChatParams(system_prompt="Be brief")
    )
    for question in ("First", "Second", "Third"):
        await collect(chat.reply(conversation, question))

    replies = [m for m in await store.messages(conversation.id) if m.role == "assistant"]
    for reply, sent in zip(replies, server.requests, strict=True):
        assert reply.request is not None and reply.request.missing == 0
        assert list(reply.request.messages) == sent.json()["messages"]
    # On disk: the system prompt inline, the history as one run of the stored messages' ids.
    with sqlite_stores.raw(db_path) as conn:
        record = json.loads(conn.execute("SELECT request FROM messages WHERE id = ?", (replies[-1].id,)).fetchone()[0])
    conn.close()
    system, run = record["messages"]
    assert system == {"role": "system", "content": "Be brief"}
    assert (run["run"], run["count"]) == ([replies[0].id - 1, replies[-1].id - 1], 5)
