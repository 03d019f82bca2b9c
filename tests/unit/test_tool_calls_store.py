"""Tool turns and the stores: a schema-3 file opens migrated, every round is in the usage log, and
a reply's calls held in memory at quit survive to the next start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.settings import Settings
from desktop_app.domain.tools import ToolCall, ToolCalls, ToolSpec
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import SCHEMA_VERSION, ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.reply_saving import changes_from_json, changes_to_json
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.openai_fault import FaultServer
from tests.unit import sqlite_stores
from tests.unit.test_conversation_search import undo_schema_5

NOW = ToolSpec(
    name="now", parameters={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
)


@pytest.mark.asyncio
async def test_a_schema_3_file_opens_migrated_with_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    await store.open()
    conversation = await store.create_conversation(title="Old")
    await store.add_message(conversation.id, role="user", content="before tools")
    await store.close()
    with sqlite_stores.raw(path) as conn:  # as a build before tool calling left it
        undo_schema_5(conn)
        conn.execute("ALTER TABLE messages DROP COLUMN tool_calls")
        conn.execute("ALTER TABLE messages DROP COLUMN tool_call_id")
        conn.execute("PRAGMA user_version = 3")
    conn.close()

    store = ConversationStore(path)
    await store.open()
    try:
        [message] = await store.messages(conversation.id)
        assert (message.content, message.tool_calls, message.tool_call_id) == ("before tools", (), "")
        call = ToolCall("c1", "now", "{}")
        reply = await store.add_message(conversation.id, role="assistant", content="")
        assert await store.update_message(reply.id, tool_calls=(call,))
        assert (await store.get_message(reply.id)).tool_calls == (call,)  # type: ignore[union-attr]
    finally:
        await store.close()
    assert sqlite_stores.journal_mode_and_version(path)[1] == SCHEMA_VERSION == 5


@pytest.mark.asyncio
async def test_every_round_of_a_tool_turn_is_in_the_usage_log(
    engine: LiteLLMEngine, server: FaultServer, account: Account, tmp_path: Path
) -> None:
    secrets = SecretStore()
    await secrets.set(account.id, "sk-test")
    usage = UsageStore(tmp_path / "usage.sqlite3")
    await usage.open()
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    await store.open()
    try:
        dispatcher = Dispatcher(
            llm=LLMService(engine=engine),
            secrets=secrets,
            states=AccountStates(),
            settings=lambda: Settings(accounts=[account]),
            usage=usage,
            timeout_s=lambda: 30.0,
        )
        chat = ChatService(dispatcher=dispatcher, store=store)
        conversation = await store.create_conversation(
            title=DEFAULT_TITLE, account_id=account.id, model="tools-2", params=ChatParams(tools=(NOW,))
        )
        events = [e async for e in chat.reply(conversation, "Time?")]
        for _ in range(2):
            [calls] = [e for e in events if isinstance(e, ToolCalls)]
            events = [e async for e in await chat.answer_tool_calls(conversation, [(calls.calls[0].id, "noon")])]
        records = await usage.records()
        assert len(records) == 3 and all(r.status == "ok" and r.completion_tokens for r in records)
        stored = [m for m in await store.messages(conversation.id) if m.role == "assistant"]
        assert sorted(m.metrics.completion_tokens or 0 for m in stored) == sorted(
            r.completion_tokens or 0 for r in records
        )
    finally:
        await store.close()
        await usage.close()
        await secrets.close()


def test_calls_held_at_quit_go_to_the_spill_file_and_come_back() -> None:
    calls = (ToolCall("c1", "now", '{"zone": "UTC"}'),)
    held = {"content": "", "status": MessageStatus.COMPLETE, "tool_calls": calls}
    spilled = json.loads(json.dumps(changes_to_json(held)))
    assert changes_from_json(spilled) == held
