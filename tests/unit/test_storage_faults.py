"""Storage faults put into the real SQLite file: another program's lock, a full disk, a damaged page.

Each is said in one sentence (`StorageFailed`), nothing already stored is lost, and the same call
works once the cause is gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.errors import StorageFailed
from desktop_app.services.chat.conversations import ConversationStore
from tests.unit import sqlite_stores

BUSY_TIMEOUT_S = 0.2  # how long the store waits for another program's lock in these tests


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "conversations.sqlite3"


def make_store(path: Path) -> ConversationStore:
    store = ConversationStore(path)
    store.busy_timeout_s = BUSY_TIMEOUT_S
    return store


@pytest_asyncio.fixture
async def store(db_path: Path) -> AsyncIterator[ConversationStore]:
    store = make_store(db_path)
    await store.open()
    yield store
    await store.close()


async def big_conversation(path: Path, messages: int = 400) -> int:
    """A database with one conversation of `messages` messages ("message 000 ..."); returns its id."""
    store = make_store(path)
    await store.open()
    conversation = await store.create_conversation(title="Four hundred")
    await store.set_pinned(conversation.id, True)
    await store.set_tags(conversation.id, ["long", "Lorem"])
    for i in range(messages):
        await store.add_message(
            conversation.id, role=("user", "assistant")[i % 2], content=f"message {i:03d} " + "lorem ipsum " * 25
        )
    await store.close()
    return conversation.id


# --- another program holds the lock ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_write_refused_by_another_programs_lock_says_so_and_works_once_it_goes(
    store: ConversationStore, db_path: Path
) -> None:
    conversation = await store.create_conversation(title="Locked out")
    with sqlite_stores.write_lock_held(db_path):
        with pytest.raises(StorageFailed) as caught:
            await store.add_message(conversation.id, role="user", content="kept, please")
        assert await store.messages(conversation.id) == []  # WAL: reading still works
    error = caught.value
    assert error.cause == "locked"
    assert error.message == (f"The conversation history database is locked by another program ({db_path}).")
    assert error.kept("your message is kept").message.endswith("; your message is kept.")
    assert "Retry" in error.action
    await store.add_message(conversation.id, role="user", content="kept, please")
    assert [m.content for m in await store.messages(conversation.id)] == ["kept, please"]


@pytest.mark.asyncio
async def test_a_store_locked_at_open_says_why_refuses_writes_and_opens_once_the_lock_goes(db_path: Path) -> None:
    await big_conversation(db_path, messages=2)
    store = make_store(db_path)
    try:
        with sqlite_stores.exclusive_mode_held(db_path):
            with pytest.raises(StorageFailed) as caught:
                await store.open()
            assert caught.value.cause == "locked" and not store.is_open
            assert store.problem is caught.value
            with pytest.raises(StorageFailed) as refused:  # not a silent StoreClosed
                await store.create_conversation(title="meanwhile")
            assert refused.value.message == caught.value.message
        assert await store.open() is None
        assert store.is_open and store.problem is None
        [conversation] = await store.list_conversations()
        assert len(await store.messages(conversation.id)) == 2
    finally:
        await store.close()
    assert not list(db_path.parent.glob("*.corrupt-*"))  # a locked file is not a broken one


# --- the disk is full ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_full_disk_says_so_with_the_folder_and_the_write_works_once_there_is_room(tmp_path: Path) -> None:
    with sqlite_stores.small_disk(tmp_path / "data") as folder:
        store = make_store(folder / "conversations.sqlite3")
        await store.open()
        try:
            conversation = await store.create_conversation(title="Full")
            filler = sqlite_stores.fill_disk(folder)
            with pytest.raises(StorageFailed) as caught:
                await store.add_message(conversation.id, role="user", content="a long message " * 2000)
            assert caught.value.cause == "full"
            assert caught.value.message == f"The disk holding the conversation history is full ({folder})."
            filler.unlink()
            await store.add_message(conversation.id, role="user", content="a long message " * 2000)
            assert len(await store.messages(conversation.id)) == 1
        finally:
            await store.close()


# --- the system refuses the write -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_disk_io_error_is_said_with_the_folder_and_the_write_works_once_it_passes(
    store: ConversationStore, db_path: Path
) -> None:
    conversation = await store.create_conversation(title="I/O")
    with sqlite_stores.file_size_limit(256 * 1024), pytest.raises(StorageFailed) as caught:
        await store.add_message(conversation.id, role="user", content="x" * 400_000)
    assert caught.value.cause == "io"
    assert caught.value.message == (
        f"The conversation history database could not be read or written: the disk "
        f"reported an error ({db_path.parent})."
    )
    await store.add_message(conversation.id, role="user", content="x" * 400_000)
    assert len(await store.messages(conversation.id)) == 1


# --- a damaged page ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_damaged_page_is_found_at_open_the_file_set_aside_and_what_is_readable_recovered(
    db_path: Path,
) -> None:
    conversation_id = await big_conversation(db_path)
    sqlite_stores.damage_page_holding(db_path, b"message 200 ")
    store = make_store(db_path)
    try:
        notice = await store.open()
        [moved] = db_path.parent.glob("conversations.sqlite3.corrupt-*")
        assert notice == (
            f"Your conversation history could not be read (a part of the file is damaged), so it "
            f"was moved to {moved} and ModelDesk started a new one."
        )
        assert store.damaged_copy == moved
        assert await store.list_conversations() == []  # new writes go to a new file
        conversations, messages = await store.recover()
        assert conversations == 1 and 350 < messages < 400  # all but the damaged page's rows
        [recovered] = await store.list_conversations()
        assert (recovered.id, recovered.title) == (conversation_id, "Four hundred")
        assert recovered.pinned and sorted(recovered.tags) == ["Lorem", "long"]  # kept with it
        contents = [m.content for m in await store.messages(recovered.id)]
        assert contents[0].startswith("message 000") and contents[-1].startswith("message 399")
        assert not any(c.startswith("message 200 ") for c in contents)
        assert store.damaged_copy is None  # recovered once, not twice
        assert await store.recover() == (0, 0)
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_page_damaged_while_open_is_found_by_the_read_that_meets_it(db_path: Path) -> None:
    conversation_id = await big_conversation(db_path)
    store = make_store(db_path)
    await store.open()
    try:
        sqlite_stores.damage_page_holding(db_path, b"message 200 ")
        with sqlite_stores.raw(db_path) as other:  # another write, so the store reads the file again
            other.execute("UPDATE conversations SET title = 'touched' WHERE id = ?", (conversation_id,))
        other.close()
        with pytest.raises(StorageFailed) as caught:
            await store.messages(conversation_id)
        assert caught.value.cause == "damaged"
        assert "was moved to" in caught.value.message and store.damaged_copy is not None
        new = await store.create_conversation(title="After")  # the new file takes writes at once
        await store.add_message(new.id, role="user", content="still works")
        _, messages = await store.recover()
        assert messages > 350
        titles = {c.title for c in await store.list_conversations()}
        assert titles == {"touched", "After"}
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_sound_large_file_passes_the_check_and_keeps_every_message(db_path: Path) -> None:
    conversation_id = await big_conversation(db_path)
    store = make_store(db_path)
    try:
        assert await store.open() is None and store.damaged_copy is None
        assert len(await store.messages(conversation_id)) == 400
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_reply_status_written_after_the_lock_goes_is_the_real_one(
    store: ConversationStore, db_path: Path
) -> None:
    conversation = await store.create_conversation(title="Streaming")
    reply = await store.add_message(conversation.id, role="assistant", content="", status=MessageStatus.STREAMING)
    with sqlite_stores.write_lock_held(db_path), pytest.raises(StorageFailed):
        await store.update_message(reply.id, content="done", status=MessageStatus.COMPLETE)
    assert await store.update_message(reply.id, content="done", status=MessageStatus.COMPLETE)
    assert (await store.get_message(reply.id)).status is MessageStatus.COMPLETE
