"""The request behind a reply in the conversation store: kept across a reopen, and a database from
before it was stored (schema 1) opens migrated with nothing lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.conversations import MessageStatus
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


@pytest.mark.asyncio
async def test_a_reply_keeps_its_request_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    await store.open()
    try:
        conversation = await store.create_conversation(title="Now", params=ChatParams(temperature=0.2))
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
        [stored] = await reopened.messages(conversation.id)
        assert stored.request == REQUEST
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
