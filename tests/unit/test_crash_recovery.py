"""Crash recovery: text that arrived is on disk within the save interval whatever the stream does,
and a reply a crash cut off comes back `interrupted`, with its usage record, sent as context."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished
from desktop_app.domain.conversations import InterruptedReply, MessageStatus
from desktop_app.domain.search import SearchQuery
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.service import DEFAULT_TITLE, recover_interrupted
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.openai_fault import FaultServer
from tests.unit.sqlite_stores import store_fixtures
from tests.unit.test_chat_service import KEY, make_chat

REPO_ROOT = Path(__file__).resolve().parents[2]

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


async def next_line(process: asyncio.subprocess.Process, timeout: float) -> dict:
    """The child's next printed event; fails with its stderr when it ended first."""
    line = await asyncio.wait_for(process.stdout.readline(), timeout=timeout)
    assert line, (await process.stderr.read()).decode()[-2000:]
    return json.loads(line)


async def wait_for_save(process: asyncio.subprocess.Process, content: str, timeout: float = 5.0) -> None:
    """Until the child says its store committed the reply's text `content` (the save timer's write:
    nothing more arrives from the server)."""
    async with asyncio.timeout(timeout):
        while (await next_line(process, timeout)).get("saved") != content:
            pass


# The app's own turn (ChatService, dispatcher, LiteLLM engine, store) in a process of its own that
# is killed with SIGKILL: no finally, no close, nothing after the kill.
_STREAMING_APP = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path

    from desktop_app.domain.accounts import Account
    from desktop_app.domain.chat import ChatParams, TextDelta
    from desktop_app.services.chat.conversations import ConversationStore
    from desktop_app.services.litellm_engine import LiteLLMEngine
    from desktop_app.services.accounts.secrets import SecretStore
    from tests.unit.test_chat_service import KEY, make_chat

    class TellingStore(ConversationStore):
        # The real store; says on stdout when a reply's text is committed (the test waits for it).
        async def update_message(self, message_id, **changes):
            done = await super().update_message(message_id, **changes)
            if changes.get("content") is not None:
                print(json.dumps({"saved": changes["content"]}), flush=True)
            return done

    async def main():
        db, base_url, model = sys.argv[1:4]
        store = TellingStore(Path(db))
        await store.open()
        secrets = SecretStore()
        await secrets.start()
        account = Account(provider_id="openai_compatible", label="Bursty", base_url=base_url)
        await secrets.set(account.id, KEY)
        engine = LiteLLMEngine()
        engine.start()
        chat = make_chat(engine, store, secrets, account)
        conversation = await store.create_conversation(
            title="t", account_id=account.id, model=model, params=ChatParams())
        shown = []
        async for event in chat.reply(conversation, "Tell me a story"):
            if isinstance(event, TextDelta):
                shown.append(event.text)  # what the window would show by now
                print(json.dumps({"conversation": conversation.id, "shown": "".join(shown)}), flush=True)

    asyncio.run(main())
    """
)


@contextlib.asynccontextmanager
async def stalled_writer(db_path: Path, server: FaultServer) -> AsyncIterator[tuple[int, str]]:
    """The app's turn in a child process against "fault-stall" (three chunks, then silence), until
    the save timer committed the text: yields (conversation id, the text shown), then kills the child
    with SIGKILL (no finally, no close, nothing after the kill)."""
    env = dict(
        os.environ,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STREAMING_APP, str(db_path), server.base_url, "fault-stall",
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        shown = saved = ""
        while shown != "stall0 stall1 stall2 ":
            seen = await next_line(process, timeout=60)
            if "shown" in seen:
                conversation_id, shown = seen["conversation"], seen["shown"]
            saved = seen.get("saved", saved)
        # Nothing more arrives: only the save timer can write the text.
        if saved != shown:
            await wait_for_save(process, shown)
        reader = ConversationStore(db_path)
        await reader.open()
        try:
            assert (await reader.messages(conversation_id))[-1].content == shown  # on disk, read by another
        finally:
            await reader.close()
        yield conversation_id, shown
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.asyncio
async def test_text_of_a_stream_that_pauses_is_saved_and_survives_a_hard_kill(
    db_path: Path, server: FaultServer, usage: UsageStore
) -> None:
    # "fault-stall": a burst of three chunks, then silence. Before, text was written only when the
    # next chunk came, so all three were lost however long the pause.
    async with stalled_writer(db_path, server) as (conversation_id, shown):
        assert shown == "stall0 stall1 stall2 "  # and on disk, read by another connection (stalled_writer)

    store = ConversationStore(db_path)
    await store.open()
    try:
        [found] = await recover_interrupted(store, usage, Settings())
        user, reply = await store.messages(conversation_id)
        assert user.content == "Tell me a story"
        assert (reply.content, reply.status) == (shown, MessageStatus.INTERRUPTED)
        assert found.message_id == reply.id
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_interrupted_replies_are_marked_once_with_a_usage_record_each(
    store: ConversationStore, usage: UsageStore
) -> None:
    account = Account(provider_id="openai_compatible", label="Lab", base_url="http://127.0.0.1:9/v1")
    first = await store.create_conversation(title="First", account_id=account.id, model="m1")
    second = await store.create_conversation(title="Second", account_id=account.id, model="m2")
    await store.add_message(first.id, role="user", content="q1")
    cut = await store.add_message(
        first.id, role="assistant", content="", status=MessageStatus.STREAMING, account_id=account.id, model="m1"
    )
    await store.update_message(cut.id, content="Half an ans")
    await store.add_message(second.id, role="user", content="q2")
    done = await store.add_message(
        second.id, role="assistant", content="Whole answer", account_id=account.id, model="m2"
    )
    order = [c.id for c in await store.list_conversations()]
    before = time.time()

    found = await recover_interrupted(store, usage, Settings(accounts=[account]))

    assert [(r.message_id, r.conversation_id, r.account_id, r.model) for r in found] == [
        (cut.id, first.id, account.id, "m1")
    ]
    assert isinstance(found[0], InterruptedReply) and found[0].started_at <= before
    reply = await store.get_message(cut.id)
    assert (reply.content, reply.status) == ("Half an ans", MessageStatus.INTERRUPTED)
    assert (await store.get_message(done.id)).status is MessageStatus.COMPLETE
    assert [c.id for c in await store.list_conversations()] == order  # recovery is not activity
    [record] = await usage.records()
    assert (record.account_id, record.model, record.status) == (account.id, "m1", "interrupted")
    assert (record.prompt_tokens, record.completion_tokens, record.cost_usd) == (None, None, None)
    # A second start finds nothing more to recover and records nothing twice.
    assert await recover_interrupted(store, usage, Settings(accounts=[account])) == []
    assert len(await usage.records()) == 1


@pytest.mark.asyncio
async def test_an_interrupted_partial_reply_goes_with_the_next_message_as_context(
    engine: LiteLLMEngine,
    store: ConversationStore,
    secrets: SecretStore,
    account: Account,
    server: FaultServer,
    usage: UsageStore,
) -> None:
    conversation = await store.create_conversation(
        title=DEFAULT_TITLE, account_id=account.id, model="ok", params=ChatParams()
    )
    await store.add_message(conversation.id, role="user", content="Tell me a story")
    cut = await store.add_message(
        conversation.id, role="assistant", content="", account_id=account.id, model="ok", status=MessageStatus.STREAMING
    )
    await store.update_message(cut.id, content="Once upon a")
    await recover_interrupted(store, usage, Settings(accounts=[account]))

    chat = make_chat(engine, store, secrets, account)
    events = [event async for event in chat.reply(conversation, "Go on")]

    assert isinstance(events[-1], Finished)
    assert server.requests[-1].json()["messages"] == [
        {"role": "user", "content": "Tell me a story"},
        {"role": "assistant", "content": "Once upon a"},
        {"role": "user", "content": "Go on"},
    ]


@pytest.mark.asyncio
async def test_the_search_index_matches_the_messages_after_the_writer_is_killed_mid_reply(
    db_path: Path, server: FaultServer, usage: UsageStore
) -> None:
    from tests.unit.test_conversation_search import index_mismatches

    async with stalled_writer(db_path, server) as (conversation_id, _shown):
        reader = ConversationStore(db_path)
        await reader.open()
        try:
            # Saved while streaming, so not in the index yet; the question is.
            assert await reader.search(SearchQuery(text="stall1")) == []
            assert len(await reader.search(SearchQuery(text="story"))) == 1
        finally:
            await reader.close()

    store = ConversationStore(db_path)
    await store.open()
    try:
        await recover_interrupted(store, usage, Settings())
        [hit] = await store.search(SearchQuery(text="stall1"))
        reply = (await store.messages(conversation_id))[-1]
        assert (hit.message_id, reply.status) == (reply.id, MessageStatus.INTERRUPTED)
    finally:
        await store.close()
    assert index_mismatches(db_path) == []
