"""The request behind a reply in the conversation store: kept across a reopen, and a database from
before it was stored (schema 1) opens migrated with nothing lost."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.conversations import MessageStatus, StoredMessage
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.services.chat import conversations
from desktop_app.services.chat.conversations import SCHEMA_VERSION, ConversationStore
from tests.unit import sqlite_stores

REQUEST = SentRequest(
    account_id="acc1",
    provider_id="openai",
    base_url="https://api.openai.com/v1",
    api_base=None,
    litellm_model="openai/gpt-4o-mini",
    model="gpt-4o-mini",
    messages=({"role": "system", "content": "Be brief ‘x’"}, {"role": "user", "content": "Hi\n$HOME"}),
    params={"temperature": 0.2, "stop": ["END"], "response_format": {"type": "json_object"}},
    headers={"X-Team": "blue"},
    secret_headers=("Cookie",),
    stream_options={"include_usage": True},
)
V1_METRICS = {"ttft_s": 0.25, "tokens_per_s": 40.0, "prompt_tokens": 12, "completion_tokens": 30, "cost_usd": None}


def write_schema_1(path: Path) -> None:
    """A database as the build before schema 2 wrote it: its schema, and rows as its INSERTs made them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        for statement in conversations._MIGRATIONS[0]:  # migrations are never edited once shipped
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        params = ChatParams(system_prompt="Old prompt", temperature=0.7).model_dump_json()
        conn.execute(
            "INSERT INTO conversations (title, account_id, model, params, created_at, updated_at)"
            " VALUES ('Before', 'acc1', 'gpt-4o-mini', ?, 1.0, 3.0)",
            (params,),
        )
        conn.execute(
            "INSERT INTO messages (conversation_id, role, content, status, account_id, model, created_at)"
            " VALUES (1, 'user', 'Hello', 'complete', '', '', 2.0)"
        )
        conn.execute(
            "INSERT INTO messages (conversation_id, role, content, status, account_id, model, created_at)"
            " VALUES (1, 'assistant', '', 'streaming', 'acc1', 'gpt-4o-mini', 3.0)"
        )
        conn.execute(
            "UPDATE messages SET content = 'Hi there', reasoning = 'thinking', status = 'complete', metrics = ?,"
            " error = '' WHERE id = 2",
            (json.dumps(V1_METRICS),),
        )
        conn.commit()
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_a_schema_1_database_opens_migrated_with_every_message_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "conversations.sqlite3"
    write_schema_1(path)
    store = ConversationStore(path)
    assert await store.open() is None  # no notice: nothing was set aside
    try:
        [conversation] = await store.list_conversations()
        assert (conversation.title, conversation.model, conversation.params.system_prompt) == (
            "Before",
            "gpt-4o-mini",
            "Old prompt",
        )
        user, reply = await store.messages(conversation.id)
        assert (user.role, user.content, user.request) == ("user", "Hello", None)
        assert (reply.content, reply.reasoning, reply.status) == ("Hi there", "thinking", MessageStatus.COMPLETE)
        assert reply.metrics == ReplyMetrics.from_json(V1_METRICS)
        assert reply.request is None  # sent before requests were recorded: no code to show
        # The migrated file takes requests from now on.
        assert await store.update_message(reply.id, request=REQUEST)
        assert (await store.get_message(reply.id)).request == REQUEST
    finally:
        await store.close()
    with sqlite_stores.raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5


@pytest.mark.asyncio
async def test_a_reply_keeps_its_request_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    await store.open()
    try:
        conversation = await store.create_conversation(title="Now", params=ChatParams(temperature=0.2))
        await store.add_message(conversation.id, role="user", content="Hi\n$HOME")  # referred to, not copied
        reply = await store.add_message(conversation.id, role="assistant", content="", status=MessageStatus.STREAMING)
        await store.update_message(reply.id, request=REQUEST)
        # The user changes the conversation's parameters and prompt afterwards: the record stays.
        await store.update_conversation_settings(
            conversation.id, account_id="other", model="m", params=ChatParams(system_prompt="New", temperature=1.5)
        )
    finally:
        await store.close()
    reopened = ConversationStore(path)
    await reopened.open()
    try:
        _, stored = await reopened.messages(conversation.id)
        assert stored.request == REQUEST
        assert (await reopened.get_message(stored.id)).request == REQUEST
    finally:
        await reopened.close()


@pytest.mark.asyncio
async def test_an_unreadable_request_record_only_loses_the_code_view(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    await store.open()
    try:
        conversation = await store.create_conversation(title="Odd")
        reply = await store.add_message(conversation.id, role="assistant", content="Answer")
        with sqlite_stores.raw(path) as conn:
            conn.execute("UPDATE messages SET request = ? WHERE id = ?", ('{"version": 99}', reply.id))
        conn.close()
        [stored] = await store.messages(conversation.id)
        assert (stored.content, stored.request) == ("Answer", None)
    finally:
        await store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("schema", [1, 2])
async def test_recovery_copies_requests_from_a_file_of_either_schema(tmp_path: Path, schema: int) -> None:
    damaged = tmp_path / "old.sqlite3"
    if schema == 1:
        write_schema_1(damaged)
    else:
        old = ConversationStore(damaged)
        await old.open()
        conversation = await old.create_conversation(title="Before")
        await old.add_message(conversation.id, role="user", content="Hello")
        reply = await old.add_message(conversation.id, role="assistant", content="Hi there")
        await old.update_message(reply.id, request=REQUEST)
        await old.close()
    store = ConversationStore(tmp_path / "new.sqlite3")
    await store.open()
    try:
        store.damaged_copy = damaged  # as if open() had set it aside
        assert await store.recover() == (1, 2)
        [conversation] = await store.list_conversations()
        user, reply = await store.messages(conversation.id)
        assert (user.content, reply.content) == ("Hello", "Hi there")
        assert reply.request == (REQUEST if schema == 2 else None)
    finally:
        await store.close()


async def _turn(store: ConversationStore, conversation_id: int, question: str, answer: str) -> StoredMessage:
    """One turn as ChatService stores it: the question, then the reply with the request sent for it
    (the system prompt, then every earlier message and the question)."""
    await store.add_message(conversation_id, role="user", content=question)
    history = [{"role": m.role, "content": m.content} for m in await store.messages(conversation_id)]
    reply = await store.add_message(conversation_id, role="assistant", content="", status=MessageStatus.STREAMING)
    request = replace(REQUEST, messages=({"role": "system", "content": "Be brief"}, *history))
    await store.update_message(reply.id, request=request)
    await store.update_message(reply.id, content=answer, status=MessageStatus.COMPLETE)
    return reply


def _request_bytes(path: Path) -> int:
    with sqlite_stores.raw(path) as conn:
        total = conn.execute("SELECT SUM(LENGTH(CAST(request AS BLOB))) FROM messages").fetchone()[0]
    conn.close()
    return total


@pytest.mark.asyncio
async def test_a_long_conversation_stores_its_requests_in_space_linear_in_its_length(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    await store.open()
    try:
        conversation = await store.create_conversation(title="Long")
        text_bytes = 0
        for turn in range(200):
            question, answer = f"Question {turn} " + "q" * 200, f"Answer {turn} " + "a" * 2_000
            await _turn(store, conversation.id, question, answer)
            text_bytes += len(question) + len(answer)
        stored = await store.messages(conversation.id)
    finally:
        await store.close()
    # Each request refers to the messages before it: a few dozen bytes each (~40 kB in all for
    # 200 turns), not a copy of them (the whole history 200 times over would be ~220 MB).
    request_bytes = _request_bytes(path)
    assert request_bytes < text_bytes
    last = stored[-1].request
    assert last is not None and last.missing == 0
    assert last.messages[1:] == tuple({"role": m.role, "content": m.content} for m in stored[:-1])


async def _three_turns(path: Path) -> tuple[int, list[StoredMessage]]:
    store = ConversationStore(path)
    await store.open()
    try:
        conversation = await store.create_conversation(title="Three")
        for turn in range(3):
            await _turn(store, conversation.id, f"Question {turn}", f"Answer {turn}")
        return conversation.id, await store.messages(conversation.id)
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_request_whose_message_was_deleted_since_says_how_many_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    conversation_id, before = await _three_turns(path)
    with sqlite_stores.raw(path) as conn:  # gone (a damaged page left out by recovery, say)
        conn.execute("DELETE FROM messages WHERE id = ?", (before[2].id,))  # question 1
        # Recovery has what follows it follow the message before it.
        conn.execute("UPDATE messages SET parent_id = ? WHERE id = ?", (before[1].id, before[3].id))
    conn.close()
    store = ConversationStore(path)
    await store.open()
    try:
        after = await store.messages(conversation_id)
        assert [m.id for m in after] == [m.id for m in before if m.content != "Question 1"]
        first, second, last = after[1].request, after[2].request, after[-1].request
        assert first == before[1].request and first.missing == 0  # it did not include it
        # The run of stored messages it was in is left out, and counted; the system prompt (kept
        # inline) is still shown.
        assert (second.missing, second.messages) == (3, before[3].request.messages[:1])
        assert (last.missing, last.messages) == (5, before[5].request.messages[:1])
        assert (await store.get_message(before[-1].id)).request == last
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_request_whose_message_changed_since_does_not_show_the_new_text(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    conversation_id, before = await _three_turns(path)
    with sqlite_stores.raw(path) as conn:  # another message under the same id (ids reused by a recovery, say)
        conn.execute("UPDATE messages SET content = 'Something else' WHERE id = ?", (before[0].id,))
    conn.close()
    store = ConversationStore(path)
    await store.open()
    try:
        after = await store.messages(conversation_id)
        # Each reply's run started with that first question: all of it is left out, and counted.
        assert [reply.request.missing for reply in after[1::2]] == [1, 3, 5]
        for reply in after[1::2]:
            assert reply.request.messages == ({"role": "system", "content": "Be brief"},)
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_retry_leaves_every_remaining_request_whole(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    conversation_id, before = await _three_turns(path)
    store = ConversationStore(path)
    await store.open()
    try:
        # Deleting the second answer deletes what follows it too; a new answer takes its place.
        assert await store.delete_message(before[3].id) == 3
        retried = await store.add_message(conversation_id, role="assistant", content="", status=MessageStatus.STREAMING)
        request = replace(REQUEST, messages=tuple({"role": m.role, "content": m.content} for m in before[:3]))
        await store.update_message(retried.id, request=request)
        after = await store.messages(conversation_id)
        assert [m.request.missing for m in after if m.role == "assistant"] == [0, 0]
        assert after[1].request == before[1].request and after[-1].request == request
    finally:
        await store.close()
    assert _request_bytes(path) < 2 * len(json.dumps(REQUEST.to_json()))  # the messages are referred to
