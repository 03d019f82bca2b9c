"""The SQLite conversation store: CRUD, ordering, durability and recovery from a broken file."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from desktop_app.domain.chat import ChatParams, ReplyMetrics, ResponseFormat
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.chat.conversations import SCHEMA_VERSION, ConversationStore, StoreClosed
from tests.unit import sqlite_stores

REPO_ROOT = Path(__file__).resolve().parents[2]

db_path, store = sqlite_stores.store_fixtures(ConversationStore, "conversations.sqlite3")


# --- opening ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_database_is_in_wal_mode_with_a_versioned_schema(store: ConversationStore, db_path: Path) -> None:
    assert store.notice is None
    assert sqlite_stores.journal_mode_and_version(db_path) == ("wal", SCHEMA_VERSION)
    with sqlite_stores.raw(db_path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"conversations", "messages"} <= tables


@pytest.mark.asyncio
async def test_opening_twice_and_closing_twice_is_harmless(db_path: Path) -> None:
    store = ConversationStore(db_path)
    assert await store.open() is None
    assert await store.open() is None

    await store.close()
    await store.close()

    with pytest.raises(StoreClosed):
        await store.list_conversations()


@pytest.mark.asyncio
async def test_calls_before_open_say_so(db_path: Path) -> None:
    store = ConversationStore(db_path)
    try:
        with pytest.raises(StoreClosed):
            await store.list_conversations()
    finally:
        await store.close()


# --- conversations ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_and_get_a_conversation(store: ConversationStore) -> None:
    params = ChatParams(
        system_prompt="Be brief.",
        temperature=0.3,
        stop=("END",),
        seed=7,
        response_format=ResponseFormat.JSON_SCHEMA,
        json_schema='{"type": "object"}',
    )

    created = await store.create_conversation(title="Trip plans", account_id="acc1", model="gpt-4o-mini", params=params)
    fetched = await store.get_conversation(created.id)

    assert fetched == created
    assert (fetched.title, fetched.account_id, fetched.model) == ("Trip plans", "acc1", "gpt-4o-mini")
    assert fetched.params == params
    assert fetched.updated_at > 0
    assert await store.get_conversation(created.id + 1000) is None


@pytest.mark.asyncio
async def test_defaults_for_a_new_conversation(store: ConversationStore) -> None:
    created = await store.create_conversation(title="Untitled")

    fetched = await store.get_conversation(created.id)

    assert (fetched.account_id, fetched.model, fetched.params) == ("", "", ChatParams())


@pytest.mark.asyncio
async def test_the_list_puts_the_most_recently_active_first(store: ConversationStore) -> None:
    a = await store.create_conversation(title="a")
    b = await store.create_conversation(title="b")
    c = await store.create_conversation(title="c")

    assert [x.title for x in await store.list_conversations()] == ["c", "b", "a"]

    await store.add_message(a.id, role="user", content="hello again")
    assert [x.title for x in await store.list_conversations()] == ["a", "c", "b"]

    message = await store.add_message(b.id, role="user", content="x")
    await store.add_message(c.id, role="user", content="y")
    await store.update_message(message.id, content="x, edited")
    assert [x.title for x in await store.list_conversations()] == ["b", "c", "a"]

    # Renaming and changing the model are not activity.
    await store.rename_conversation(a.id, "a, renamed")
    await store.update_conversation_settings(a.id, account_id="z", model="m", params=ChatParams())
    assert [x.title for x in await store.list_conversations()] == ["b", "c", "a, renamed"]


@pytest.mark.asyncio
async def test_rename_and_update_settings(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="Old", account_id="a1", model="m1")
    params = ChatParams(temperature=1.5, max_tokens=256)

    assert await store.rename_conversation(conversation.id, "New") is True
    assert (
        await store.update_conversation_settings(conversation.id, account_id="a2", model="llama3.2:3b", params=params)
        is True
    )

    fetched = await store.get_conversation(conversation.id)
    assert (fetched.title, fetched.account_id, fetched.model, fetched.params) == (
        "New",
        "a2",
        "llama3.2:3b",
        params,
    )
    assert await store.rename_conversation(9999, "Nobody") is False
    assert await store.update_conversation_settings(9999, account_id="", model="", params=ChatParams()) is False


@pytest.mark.asyncio
async def test_deleting_a_conversation_deletes_its_messages(store: ConversationStore, db_path: Path) -> None:
    doomed = await store.create_conversation(title="doomed")
    kept = await store.create_conversation(title="kept")
    for text in ("one", "two", "three"):
        await store.add_message(doomed.id, role="user", content=text)
    await store.add_message(kept.id, role="user", content="stays")

    assert await store.delete_conversation(doomed.id) is True

    assert await store.get_conversation(doomed.id) is None
    assert await store.messages(doomed.id) == []
    assert [m.content for m in await store.messages(kept.id)] == ["stays"]
    with sqlite_stores.raw(db_path) as conn:
        orphans = conn.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (doomed.id,)).fetchone()[0]
    assert orphans == 0
    assert await store.delete_conversation(doomed.id) is False


# --- messages --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_messages_come_back_in_order_with_their_fields(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")

    first = await store.add_message(conversation.id, role="system", content="You are terse.")
    second = await store.add_message(conversation.id, role="user", content="Hi")
    third = await store.add_message(
        conversation.id,
        role="assistant",
        content="",
        status=MessageStatus.STREAMING,
        account_id="acc",
        model="qwen2.5:0.5b",
    )

    stored = await store.messages(conversation.id)

    assert stored == [first, second, third]
    assert [m.role for m in stored] == ["system", "user", "assistant"]
    assert first.id < second.id < third.id
    assert (third.status, third.account_id, third.model) == (MessageStatus.STREAMING, "acc", "qwen2.5:0.5b")
    assert (third.reasoning, third.error, third.metrics) == ("", "", ReplyMetrics())
    assert await store.get_message(second.id) == second


@pytest.mark.asyncio
async def test_adding_to_a_missing_conversation_is_a_key_error(store: ConversationStore) -> None:
    with pytest.raises(KeyError):
        await store.add_message(424242, role="user", content="lost")


@pytest.mark.asyncio
async def test_update_message_changes_only_the_fields_given(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")
    message = await store.add_message(
        conversation.id, role="assistant", content="", status=MessageStatus.STREAMING, model="m"
    )
    metrics = ReplyMetrics(
        ttft_s=0.2, tokens_per_s=41.5, prompt_tokens=12, completion_tokens=30, cost_usd=0.00012, latency_s=1.1
    )

    await store.update_message(message.id, content="Partial")
    after_content = await store.get_message(message.id)
    await store.update_message(message.id, reasoning="Thinking...")
    await store.update_message(message.id, content="Partial and done", status=MessageStatus.COMPLETE, metrics=metrics)
    done = await store.get_message(message.id)

    assert (after_content.content, after_content.status) == ("Partial", MessageStatus.STREAMING)
    assert done.content == "Partial and done"
    assert done.reasoning == "Thinking..."
    assert done.status is MessageStatus.COMPLETE
    assert done.metrics == metrics
    assert (done.error, done.model, done.role) == ("", "m", "assistant")

    await store.update_message(message.id, status=MessageStatus.FAILED, error="The server went away.")
    failed = await store.get_message(message.id)
    assert (failed.status, failed.error, failed.content, failed.metrics) == (
        MessageStatus.FAILED,
        "The server went away.",
        "Partial and done",
        metrics,
    )


@pytest.mark.asyncio
async def test_updating_a_message_touches_its_conversation(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")
    message = await store.add_message(conversation.id, role="user", content="a")
    before = (await store.get_conversation(conversation.id)).updated_at

    assert await store.update_message(message.id) is True  # no fields: still counts as activity

    assert (await store.get_conversation(conversation.id)).updated_at > before
    assert await store.update_message(987654, content="nobody") is False


@pytest.mark.asyncio
async def test_deleting_a_message_deletes_what_follows_it_and_keeps_the_earlier_ones(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")
    other = await store.create_conversation(title="other")
    await store.add_message(conversation.id, role="user", content="Q")
    answer = await store.add_message(conversation.id, role="assistant", content="A1")
    await store.add_message(conversation.id, role="user", content="Q2")
    unrelated = await store.add_message(other.id, role="user", content="elsewhere")

    assert await store.delete_message(answer.id) == 2

    assert [m.content for m in await store.messages(conversation.id)] == ["Q"]
    assert await store.messages(other.id) == [unrelated]
    retry = await store.add_message(conversation.id, role="assistant", content="A1 again")
    assert retry.id > unrelated.id  # ids are never reused, so stale writes cannot hit the new reply


@pytest.mark.asyncio
async def test_a_write_whose_caller_was_cancelled_still_happens(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")

    await sqlite_stores.cancel_while_queued(store, store.add_message(conversation.id, role="user", content="kept"))

    assert [m.content for m in await store.messages(conversation.id)] == ["kept"]


# --- durability ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_store_reopened_after_close_sees_everything(db_path: Path) -> None:
    first = ConversationStore(db_path)
    await first.open()
    conversation = await first.create_conversation(title="Kept", model="m", params=ChatParams(seed=3))
    message = await first.add_message(conversation.id, role="assistant", content="", status=MessageStatus.STREAMING)
    await first.update_message(
        message.id, content="Answer", status=MessageStatus.COMPLETE, metrics=ReplyMetrics(completion_tokens=5)
    )
    await first.close()

    second = ConversationStore(db_path)
    await second.open()
    try:
        assert await second.list_conversations() == [await second.get_conversation(conversation.id)]
        assert (await second.get_conversation(conversation.id)).params == ChatParams(seed=3)
        [reloaded] = await second.messages(conversation.id)
        assert (reloaded.content, reloaded.status, reloaded.metrics.completion_tokens) == (
            "Answer",
            MessageStatus.COMPLETE,
            5,
        )
        later = await second.create_conversation(title="Later")
        assert [c.title for c in await second.list_conversations()] == ["Later", "Kept"]
        assert later.id > conversation.id
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_a_streaming_reply_is_visible_to_a_second_store_while_the_first_is_still_open(
    db_path: Path,
) -> None:
    writer = ConversationStore(db_path)
    await writer.open()
    reader = ConversationStore(db_path)
    try:
        conversation = await writer.create_conversation(title="t")
        message = await writer.add_message(
            conversation.id, role="assistant", content="", status=MessageStatus.STREAMING
        )
        await writer.update_message(message.id, content="Half an ans")

        await reader.open()
        [seen] = await reader.messages(conversation.id)

        assert (seen.content, seen.status) == ("Half an ans", MessageStatus.STREAMING)
    finally:
        await reader.close()
        await writer.close()


_CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path

    from desktop_app.domain.conversations import MessageStatus
    from desktop_app.services.chat.conversations import ConversationStore

    async def main():
        store = ConversationStore(Path(sys.argv[1]))
        await store.open()
        conversation = await store.create_conversation(title="Before the crash")
        await store.add_message(conversation.id, role="user", content="Tell me a story")
        reply = await store.add_message(conversation.id, role="assistant", content="",
                                        status=MessageStatus.STREAMING)
        await store.update_message(reply.id, content="Once upon a")
        print(conversation.id, flush=True)
        os._exit(1)  # dies mid-reply: no close(), no checkpoint, no clean-up of any kind

    asyncio.run(main())
    """
)


@pytest.mark.asyncio
async def test_a_reply_being_streamed_survives_a_crash_of_the_app(db_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_WRITER,
        str(db_path),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 1, stderr.decode()
    conversation_id = int(stdout)
    # The writes are still only in the write-ahead log: reopening has to recover them from there.
    assert db_path.with_name(db_path.name + "-wal").stat().st_size > 0

    store = ConversationStore(db_path)
    await store.open()
    try:
        assert store.notice is None
        assert [c.title for c in await store.list_conversations()] == ["Before the crash"]
        user, reply = await store.messages(conversation_id)
        assert user.content == "Tell me a story"
        assert (reply.content, reply.status) == ("Once upon a", MessageStatus.STREAMING)
    finally:
        await store.close()


# --- recovery from a broken file -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_file_that_is_not_a_database_is_moved_aside_and_a_new_one_started(db_path: Path) -> None:
    garbage = sqlite_stores.write_garbage(db_path)

    async with sqlite_stores.open_set_aside(ConversationStore, db_path) as (store, notice, moved):
        assert moved.read_bytes() == garbage
        assert notice == store.notice
        assert notice == (
            "Your conversation history could not be read (the file is not a readable database), "
            f"so it was moved to {moved} and ModelDesk started a new one."
        )

        conversation = await store.create_conversation(title="Fresh start")
        await store.add_message(conversation.id, role="user", content="works")
        assert [c.title for c in await store.list_conversations()] == ["Fresh start"]
        assert [m.content for m in await store.messages(conversation.id)] == ["works"]
    with sqlite_stores.raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.asyncio
async def test_a_database_from_a_newer_version_is_moved_aside_untouched(db_path: Path) -> None:
    original = sqlite_stores.write_newer_database(db_path)

    async with sqlite_stores.open_set_aside(ConversationStore, db_path) as (store, notice, moved):
        assert moved.read_bytes() == original
        assert notice is not None and "newer version of ModelDesk" in notice and str(moved) in notice
        assert await store.list_conversations() == []
