"""Compare turns through the real ChatService, store and fault server: each column's reply in its
lane, saved while it streams; shared and per-column user turns; keeping a reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams, Finished, TextDelta
from desktop_app.domain.compare import CompareColumn, CompareSetup
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.errors import ModelNotFound
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.chat.compare import CompareTurns
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.service import ChatService
from desktop_app.services.litellm_engine import LiteLLMEngine
from tests.servers.openai_fault import FaultServer
from tests.unit.sqlite_stores import store_fixtures
from tests.unit.test_chat_service import KEY, collect, make_chat, new_conversation

db_path, store = store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest_asyncio.fixture
async def secrets(account: Account) -> AsyncIterator[SecretStore]:
    secrets = SecretStore()  # the autouse fixture made the keyring an in-memory one
    await secrets.set(account.id, KEY)
    yield secrets
    await secrets.close()


async def _comparison(store: ConversationStore, account: Account, *models: str, overrides=None):
    conversation = await new_conversation(store, account, models[0])
    columns = tuple(
        CompareColumn(account_id=account.id, model=m, overrides=(overrides or {}).get(i, {}))
        for i, m in enumerate(models)
    )
    setup = CompareSetup(columns=columns)
    await store.set_compare(conversation.id, setup)
    conversation.compare = setup
    return conversation, setup


@pytest.mark.asyncio
async def test_columns_stream_at_once_each_into_its_lane(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account, server: FaultServer
) -> None:
    chat = make_chat(engine, store, secrets, account)
    turns = CompareTurns(chat)
    conversation, setup = await _comparison(store, account, "ok", "ok", overrides={1: {"temperature": 0.2}})
    await turns.add_user_turn(conversation, "Both of you", len(setup.columns))
    results = await asyncio.gather(
        *(collect(chat.answer_lane(conversation, lane, column)) for lane, column in enumerate(setup.columns, 1))
    )
    assert all(isinstance(events[-1], Finished) for events in results)
    bodies = [r.json() for r in server.requests if r.path.endswith("/chat/completions")]
    assert sorted(str(b.get("temperature")) for b in bodies) == ["0.2", "None"]
    for lane in (1, 2):
        user, reply = await store.messages(conversation.id, lane=lane)
        assert (user.lane, user.content) == (0, "Both of you")
        assert reply.lane == lane and reply.parent_id == user.id and reply.status is MessageStatus.COMPLETE
    assert await turns.name_after(conversation, "Both of you")
    assert (await store.get_conversation(conversation.id)).title == conversation.title == "Both of you"
    assert not await turns.name_after(conversation, "a later message")  # named once


@pytest.mark.asyncio
async def test_a_lane_reply_is_saved_while_it_streams(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account
) -> None:
    chat = make_chat(engine, store, secrets, account, save_interval_s=0.05)
    conversation, setup = await _comparison(store, account, "ok", "slow")
    await CompareTurns(chat).add_user_turn(conversation, "Take your time", 2)
    stream = chat.answer_lane(conversation, 2, setup.columns[1])
    saved = ""
    async for event in stream:
        if isinstance(event, TextDelta):
            reply = (await store.messages(conversation.id, lane=2))[-1]
            assert reply.status is MessageStatus.STREAMING and reply.lane == 2
            if saved := reply.content:
                # The request goes into the row with the text, not in a write of its own before it.
                assert reply.request is not None and reply.request.messages[-1]["content"] == "Take your time"
                break
    await stream.aclose()
    reply = (await store.messages(conversation.id, lane=2))[-1]
    assert reply.status is MessageStatus.STOPPED and reply.content.startswith(saved)
    assert reply.request is not None
    assert (await store.messages(conversation.id, lane=1))[-1].role == "user"  # lane 1 untouched


@pytest.mark.asyncio
async def test_turns_go_apart_until_a_reply_is_kept_then_every_lane_follows_it(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account
) -> None:
    chat = make_chat(engine, store, secrets, account)
    turns = CompareTurns(chat)
    conversation, setup = await _comparison(store, account, "ok", "no-usage")

    async def turn(text: str) -> None:
        await turns.add_user_turn(conversation, text, 2)
        for lane, column in enumerate(setup.columns, 1):
            await collect(chat.answer_lane(conversation, lane, column))

    await turn("one")
    await turn("two")  # nothing kept: each lane gets its own copy of the message
    lanes = [await store.messages(conversation.id, lane=k) for k in (1, 2)]
    assert [[m.lane for m in path] for path in lanes] == [[0, 1, 1, 1], [0, 2, 2, 2]]
    kept = lanes[1][-1]
    await turns.pick(kept)
    await turn("three")
    for k in (1, 2):
        path = await store.messages(conversation.id, lane=k)
        assert [m.id for m in path[:4]] == [m.id for m in lanes[1]]
        assert (path[4].content, path[4].lane, path[4].parent_id) == ("three", 0, kept.id)
    assert await store.win_counts() == {(account.id, "no-usage"): 1}

    await turns.keep_only(conversation, kept)
    stored = await store.get_conversation(conversation.id)
    assert stored.compare is None and stored.model == "no-usage"
    assert [m.content for m in await store.messages(conversation.id)][:4] == [m.content for m in lanes[1]]


@pytest.mark.asyncio
async def test_a_failed_lane_reply_gives_way_to_its_retry(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account
) -> None:
    chat = make_chat(engine, store, secrets, account)
    turns = CompareTurns(chat)
    conversation, setup = await _comparison(store, account, "ok", "fault-500")
    await turns.add_user_turn(conversation, "retry me", 2)
    await collect(chat.answer_lane(conversation, 2, setup.columns[1]))
    assert (await store.messages(conversation.id, lane=2))[-1].status is MessageStatus.FAILED
    assert await turns.discard_unfinished(conversation, 2)
    assert not await turns.discard_unfinished(conversation, 2)  # only an unfinished reply goes
    await collect(chat.answer_lane(conversation, 2, CompareColumn(account_id=account.id, model="ok")))
    assert [m.status for m in await store.messages(conversation.id, lane=2)] == [
        MessageStatus.COMPLETE,
        MessageStatus.COMPLETE,
    ]


@pytest.mark.asyncio
async def test_a_column_that_cannot_be_sent_is_refused_before_anything_is_stored(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account
) -> None:
    chat: ChatService = make_chat(engine, store, secrets, account)
    conversation, _ = await _comparison(store, account, "ok", "ok")
    bad = CompareColumn(account_id=account.id, model="ok", overrides={"temperature": 5.0})
    with pytest.raises(ValueError, match="temperature"):
        bad.params(ChatParams())
    with pytest.raises(ModelNotFound):
        await collect(chat.answer_lane(conversation, 1, CompareColumn(account_id=account.id, model="")))
    assert await store.messages(conversation.id, lane=1) == []


@pytest.mark.asyncio
async def test_a_first_turn_knows_each_lane_s_history_without_reading_it(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account, server: FaultServer
) -> None:
    # The first turn's requests go without a read of each lane (four reads queue on the store's one
    # worker): the paths it hands back are the ones the store holds, and the replies land the same.
    chat = make_chat(engine, store, secrets, account)
    turns = CompareTurns(chat)
    conversation, setup = await _comparison(store, account, "ok", "ok", "ok")
    paths = await turns.add_user_turn(conversation, "First of all", len(setup.columns), first=True)
    assert paths == await turns.lanes(conversation, len(setup.columns))
    assert [[m.content for m in path] for path in paths] == [["First of all"]] * 3
    results = await asyncio.gather(
        *(
            collect(chat.answer_lane(conversation, lane, column, path=path))
            for (lane, column), path in zip(enumerate(setup.columns, 1), paths, strict=True)
        )
    )
    assert all(isinstance(events[-1], Finished) for events in results)
    bodies = [r.json() for r in server.requests if r.path.endswith("/chat/completions")]
    assert [b["messages"] for b in bodies] == [[{"role": "user", "content": "First of all"}]] * 3
    for lane in (1, 2, 3):
        user, reply = await store.messages(conversation.id, lane=lane)
        assert reply.lane == lane and reply.parent_id == user.id and reply.status is MessageStatus.COMPLETE
        assert reply.request is not None  # held from Started, written with the reply's last write
    assert await turns.add_user_turn(conversation, "And then?", len(setup.columns)) is None  # later turns read


@pytest.mark.asyncio
async def test_a_turn_carries_its_attached_files_and_needs_no_text_with_them(
    engine: LiteLLMEngine, store: ConversationStore, secrets: SecretStore, account: Account
) -> None:
    from desktop_app.domain.attachments import Attachment, AttachmentKind
    from desktop_app.domain.errors import BadRequest

    chat = make_chat(engine, store, secrets, account)
    turns = CompareTurns(chat)
    conversation, _setup = await _comparison(store, account, "ok", "no-usage")
    picture = Attachment(digest="ab" * 32, name="chart.png", kind=AttachmentKind.IMAGE, media_type="image/png", size=9)
    with pytest.raises(BadRequest):
        await turns.add_user_turn(conversation, " ", 2, first=True)
    paths = await turns.add_user_turn(conversation, "", 2, first=True, attachments=(picture,))
    assert paths is not None and [path[0].attachments for path in paths] == [(picture,), (picture,)]
    await turns.add_user_turn(conversation, "And this?", 2, attachments=(picture,))
    for lane in (1, 2):
        assert [m.attachments for m in await store.messages(conversation.id, lane=lane)] == [(picture,), (picture,)]
