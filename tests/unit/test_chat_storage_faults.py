"""ChatService when the conversation store refuses a write: another program's lock on the real file,
taken before the turn or while the reply streams from the loopback fault server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished, StreamEvent, TextDelta
from desktop_app.domain.conversations import Conversation, MessageStatus
from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.sent_requests import SentRequest
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

OK_TEXT = "".join(f"word{i} " for i in range(40))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "conversations.sqlite3"


@pytest_asyncio.fixture
async def store(db_path: Path) -> AsyncIterator[ConversationStore]:
    store = ConversationStore(db_path)
    store.busy_timeout_s = 0.2
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def spill_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "unsaved-replies.json"


@pytest_asyncio.fixture
async def chat(
    engine: LiteLLMEngine, store: ConversationStore, account: Account, spill_file: Path
) -> AsyncIterator[ChatService]:
    secrets = SecretStore()
    await secrets.set(account.id, "sk-test")
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: Settings(accounts=[account]),
        timeout_s=lambda: 30.0,
    )
    yield ChatService(dispatcher=dispatcher, store=store, save_interval_s=0.05, spill_file=spill_file)
    await secrets.close()


async def conversation_on(store: ConversationStore, account: Account, model: str) -> Conversation:
    return await store.create_conversation(title=DEFAULT_TITLE, account_id=account.id, model=model, params=ChatParams())


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


@pytest.mark.asyncio
async def test_a_message_the_store_refuses_is_said_and_nothing_is_asked_of_the_model(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account, server: FaultServer
) -> None:
    conversation = await conversation_on(store, account, "ok")
    with sqlite_stores.write_lock_held(db_path), pytest.raises(StorageFailed) as caught:
        await collect(chat.reply(conversation, "do not lose me"))
    assert caught.value.cause == "locked"
    assert await store.messages(conversation.id) == []
    assert not [r for r in server.requests if r.path.endswith("/chat/completions")]
    # Once the lock has gone, the same turn goes through.
    events = await collect(chat.reply(conversation, "do not lose me"))
    assert isinstance(events[-1], Finished)
    user, reply = await store.messages(conversation.id)
    assert user.content == "do not lose me" and reply.status is MessageStatus.COMPLETE


async def stream_with_lock_taken_after_the_first_text(
    chat: ChatService, conversation: Conversation, text: str, db_path: Path, lock: contextlib.ExitStack
) -> list[StreamEvent]:
    """Stream a turn; once its first text has arrived another program takes the lock (kept by `lock`)."""
    events: list[StreamEvent] = []
    async for event in chat.reply(conversation, text):
        events.append(event)
        if isinstance(event, TextDelta) and len(lock._exit_callbacks) == 0:
            lock.enter_context(sqlite_stores.write_lock_held(db_path))
    return events


@pytest.mark.asyncio
async def test_a_lock_taken_while_the_reply_streams_does_not_cut_it_and_the_reply_is_saved_after(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account
) -> None:
    conversation = await conversation_on(store, account, "ok")
    with contextlib.ExitStack() as lock:
        events = await stream_with_lock_taken_after_the_first_text(chat, conversation, "through it", db_path, lock)
        problem = chat.unsaved_problem
        assert problem is not None and problem.cause == "locked"
        _, stored = await store.messages(conversation.id)
        assert stored.status is MessageStatus.STREAMING  # the store could not be told yet...
        assert chat.unsaved(stored.id)["content"] == OK_TEXT  # ...but nothing is lost
        with pytest.raises(StorageFailed):
            await chat.flush_unsaved()
    assert isinstance(events[-1], Finished)  # the stream was not cut
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == OK_TEXT
    await chat.flush_unsaved()
    _, reply = await store.messages(conversation.id)
    assert (reply.status, reply.content) == (MessageStatus.COMPLETE, OK_TEXT)
    assert reply.metrics.completion_tokens == 40
    assert chat.unsaved_problem is None and chat.unsaved(reply.id) is None


@pytest.mark.asyncio
async def test_a_reply_held_in_memory_is_written_by_the_next_turn(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account
) -> None:
    conversation = await conversation_on(store, account, "ok")
    with contextlib.ExitStack() as lock:
        await stream_with_lock_taken_after_the_first_text(chat, conversation, "first", db_path, lock)
    assert chat.unsaved_problem is not None
    events = await collect(chat.reply(conversation, "second"))
    assert isinstance(events[-1], Finished)
    messages = await store.messages(conversation.id)
    assert [(m.role, m.status) for m in messages] == [
        ("user", MessageStatus.COMPLETE),
        ("assistant", MessageStatus.COMPLETE),
    ] * 2
    assert messages[1].content == OK_TEXT and chat.unsaved_problem is None


async def restarted(chat: ChatService, db_path: Path, spill_file: Path) -> tuple[ChatService, ConversationStore]:
    """A new session's store and chat service on the same files (the dispatcher is the same)."""
    store = ConversationStore(db_path)
    store.busy_timeout_s = 0.2
    await store.open()
    return ChatService(dispatcher=chat._dispatcher, store=store, spill_file=spill_file), store


@pytest.mark.asyncio
async def test_a_reply_still_held_at_quit_is_kept_in_a_file_and_written_at_the_next_start(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account, spill_file: Path
) -> None:
    conversation = await conversation_on(store, account, "ok")
    with contextlib.ExitStack() as lock:
        await stream_with_lock_taken_after_the_first_text(chat, conversation, "keep me", db_path, lock)
        with pytest.raises(StorageFailed):
            await chat.flush_unsaved()  # quitting, and the other program still holds the lock
        assert await chat.spill_unsaved() == spill_file
    assert spill_file.stat().st_mode & 0o077 == 0  # the reply's text is for this user only

    again, store_again = await restarted(chat, db_path, spill_file)
    try:
        assert await again.restore_spilled() == 1
        _, reply = await store_again.messages(conversation.id)
        assert (reply.status, reply.content) == (MessageStatus.COMPLETE, OK_TEXT)
        assert reply.metrics.completion_tokens == 40
        assert not spill_file.exists()
        assert await again.restore_spilled() == 0  # written once
    finally:
        await store_again.close()


@pytest.mark.asyncio
async def test_kept_replies_wait_for_a_store_still_locked_at_start_and_are_written_once_it_frees(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account, spill_file: Path
) -> None:
    conversation = await conversation_on(store, account, "ok")
    with contextlib.ExitStack() as lock:
        await stream_with_lock_taken_after_the_first_text(chat, conversation, "keep me", db_path, lock)
        await chat.spill_unsaved()
        again, store_again = await restarted(chat, db_path, spill_file)
        try:
            with pytest.raises(StorageFailed):
                await again.restore_spilled()
            assert spill_file.exists()  # still the only copy on disk
        except BaseException:
            await store_again.close()
            raise
    try:
        await again.flush_unsaved()  # the next turn, or Retry, writes them
        _, reply = await store_again.messages(conversation.id)
        assert (reply.status, reply.content) == (MessageStatus.COMPLETE, OK_TEXT)
        assert not spill_file.exists()
    finally:
        await store_again.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"version": 1, "replies": {"1": {"content": 7}}}', b'{"version": 1, "replies": {"x": {}}}'],
    ids=["not-json", "wrong-type", "bad-id"],
)
async def test_a_damaged_file_of_kept_replies_is_set_aside_and_never_read_again(
    chat: ChatService, spill_file: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    spill_file.parent.mkdir(parents=True, exist_ok=True)
    spill_file.write_bytes(content)
    assert await chat.restore_spilled() == 0
    assert not spill_file.exists()
    [kept] = spill_file.parent.glob("unsaved-replies.json.corrupt-*")
    assert kept.read_bytes() == content
    assert "could not be read" in caplog.text


@pytest.mark.asyncio
async def test_a_turn_cut_by_a_store_it_needs_is_recorded_as_that_failure(
    engine: LiteLLMEngine, store: ConversationStore, tmp_path: Path, server: FaultServer
) -> None:
    from desktop_app.services.accounts.usage import UsageStore

    account = Account(
        provider_id="openai_compatible", label="Budgeted", base_url=server.base_url, daily_budget_tokens=1000
    )
    usage = UsageStore(tmp_path / "data" / "usage.sqlite3")
    usage.busy_timeout_s = 0.2
    await usage.open()
    await usage.close()
    usage = UsageStore(usage.path)  # opened while another program holds the file: it cannot be read
    usage.busy_timeout_s = 0.2
    lock = contextlib.ExitStack()
    lock.enter_context(sqlite_stores.exclusive_mode_held(usage.path))
    with pytest.raises(StorageFailed):
        await usage.open()
    secrets = SecretStore()
    await secrets.set(account.id, "sk-test")
    dispatcher = Dispatcher(
        llm=LLMService(engine=engine),
        secrets=secrets,
        states=AccountStates(),
        settings=lambda: Settings(accounts=[account]),
        timeout_s=lambda: 30.0,
        usage=usage,
    )
    chat = ChatService(dispatcher=dispatcher, store=store)
    conversation = await conversation_on(store, account, "ok")
    try:
        with lock, pytest.raises(StorageFailed) as caught:
            await collect(chat.reply(conversation, "within budget?"))
    finally:
        await usage.close()
        await secrets.close()
    user, reply = await store.messages(conversation.id)
    assert user.content == "within budget?"
    assert reply.status is MessageStatus.FAILED  # not "stopped", not "ModelDesk closed"
    assert reply.error.startswith("The usage history database is locked by another program")
    assert caught.value.cause == "locked"


@pytest.mark.asyncio
async def test_a_request_still_held_at_quit_is_kept_with_its_reply_and_written_at_the_next_start(
    chat: ChatService, store: ConversationStore, db_path: Path, account: Account, spill_file: Path
) -> None:
    conversation = await conversation_on(store, account, "ok")
    await store.add_message(conversation.id, role="user", content="Keep the request")
    reply = await store.add_message(conversation.id, role="assistant", content="", status=MessageStatus.STREAMING)
    request = SentRequest(
        account_id=account.id,
        provider_id=account.provider_id,
        base_url=account.effective_base_url,
        api_base=account.effective_base_url,
        litellm_model="openai/ok",
        model="ok",
        messages=({"role": "system", "content": "Be brief"}, {"role": "user", "content": "Keep the request"}),
        params={"temperature": 0.3},
    )
    with sqlite_stores.write_lock_held(db_path):
        # The reply's request (Started) and its end arrive while another program holds the lock.
        assert await chat._save(reply.id, request=request) is not None
        assert await chat._save(reply.id, content="Done", status=MessageStatus.COMPLETE) is not None
        assert await chat.spill_unsaved() == spill_file

    again, store_again = await restarted(chat, db_path, spill_file)
    try:
        assert await again.restore_spilled() == 1
        _, stored = await store_again.messages(conversation.id)
        assert (stored.status, stored.content, stored.request) == (MessageStatus.COMPLETE, "Done", request)
    finally:
        await store_again.close()
