"""Conversations as trees: the schema-2 file migrated, versions of a turn, branches, deletion, lanes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from desktop_app.domain.chat import ChatParams
from desktop_app.domain.compare import CompareColumn, CompareSetup
from desktop_app.domain.conversations import MessageStatus, StoredMessage
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.services.chat.conversations import SCHEMA_VERSION, ConversationStore
from tests.unit import sqlite_stores

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "conversations-schema2.sqlite3"

db_path, store = sqlite_stores.store_fixtures(ConversationStore, "conversations.sqlite3")


def texts(messages: list[StoredMessage]) -> list[str]:
    return [m.content for m in messages]


def places(messages: list[StoredMessage]) -> list[tuple[int, int]]:
    return [(m.version, m.versions) for m in messages]


def request_for(messages: list[StoredMessage]) -> SentRequest:
    return SentRequest(
        account_id="acc",
        provider_id="openai",
        base_url="http://127.0.0.1:1/v1",
        api_base="http://127.0.0.1:1/v1",
        litellm_model="openai/m",
        model="m",
        messages=tuple({"role": m.role, "content": m.content} for m in messages),
    )


async def chat(store: ConversationStore, conversation_id: int, *turns: str) -> list[StoredMessage]:
    for turn in turns:
        await store.add_message(conversation_id, role="user", content=turn)
        history = await store.messages(conversation_id)
        reply = await store.add_message(conversation_id, role="assistant", content=f"re: {turn}")
        await store.update_message(reply.id, request=request_for(history))
    return await store.messages(conversation_id)


@pytest.mark.asyncio
async def test_a_database_written_by_the_schema_2_build_opens_migrated_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    shutil.copyfile(FIXTURE, path)
    with sqlite_stores.raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        rows_before = conn.execute(
            "SELECT id, conversation_id, role, content, reasoning, status, metrics, request FROM messages ORDER BY id"
        ).fetchall()
    conn.close()
    store = ConversationStore(path)
    assert await store.open() is None
    try:
        conversations = await store.list_conversations()
        assert sorted(c.title for c in conversations) == [f"Fixture conversation {n}" for n in (1, 2, 3)]
        assert all(c.compare is None and c.params.system_prompt == "Be brief." for c in conversations)
        shown = [m for c in sorted(conversations, key=lambda c: c.id) for m in await store.messages(c.id)]
        # Every message, in order, each following the one before it, each the only version of its turn.
        assert [(m.id, m.content, m.status.value) for m in shown] == [(r[0], r[3], r[5]) for r in rows_before]
        assert [m.parent_id for m in shown if m.conversation_id == 1] == [None, 1, 2, 3, 4, 5]
        assert set(places(shown)) == {(1, 1)}
        assert shown[-1].status is MessageStatus.STOPPED and shown[3].reasoning == "thinking"
        # Each reply's request still resolves to the messages it was sent with.
        for reply in (m for m in shown if m.role == "assistant"):
            assert reply.request is not None and reply.request.missing == 0
            before = [m for m in shown if m.conversation_id == reply.conversation_id and m.id < reply.id]
            assert reply.request.messages[1:] == tuple({"role": m.role, "content": m.content} for m in before)
        # And the migrated file grows a tree: a regenerated last reply of conversation 1.
        first = shown[:6]
        await store.set_leaf(1, first[4].id)
        await store.add_message(1, role="assistant", content="Another answer 3")
        assert places(await store.messages(1))[-1] == (2, 2)
    finally:
        await store.close()
    assert sqlite_stores.journal_mode_and_version(path) == ("wal", SCHEMA_VERSION)


@pytest.mark.asyncio
async def test_a_regenerated_reply_is_a_second_version_and_each_version_keeps_its_continuation(
    store: ConversationStore,
) -> None:
    conversation = await store.create_conversation(title="t")
    q1, a1, _q2, a2 = await chat(store, conversation.id, "one", "two")
    # Regenerate the first answer: the branch shown ends at its question, then a new answer.
    await store.set_leaf(conversation.id, q1.id)
    again = await store.add_message(conversation.id, role="assistant", content="re: one, again")
    shown = await store.messages(conversation.id)
    assert texts(shown) == ["one", "re: one, again"] and places(shown) == [(1, 1), (2, 2)]
    assert again.parent_id == q1.id

    # Back to version 1: its whole continuation shows again.
    assert await store.show_version(a1.id) == a2.id
    shown = await store.messages(conversation.id)
    assert texts(shown) == ["one", "re: one", "two", "re: two"]
    assert places(shown) == [(1, 1), (1, 2), (1, 1), (1, 1)]
    # The requests of the replies still resolve (their runs are runs of the branch).
    assert [m.request.missing for m in shown if m.role == "assistant"] == [0, 0]
    assert await store.show_version(again.id) == again.id
    assert texts(await store.messages(conversation.id)) == ["one", "re: one, again"]


@pytest.mark.asyncio
async def test_an_edited_message_is_a_version_of_its_turn_and_the_conversation_goes_on_from_it(
    store: ConversationStore,
) -> None:
    conversation = await store.create_conversation(title="t")
    q1, a1, q2, _a2 = await chat(store, conversation.id, "one", "two")
    edited = await store.add_message(conversation.id, role="user", content="two, edited", parent_id=q2.parent_id)
    assert edited.parent_id == a1.id
    await store.add_message(conversation.id, role="assistant", content="re: two, edited")
    shown = await store.messages(conversation.id)
    assert texts(shown) == ["one", "re: one", "two, edited", "re: two, edited"]
    assert places(shown)[2] == (2, 2)
    # The first message, edited: a second root.
    root = await store.add_message(conversation.id, role="user", content="zero", parent_id=None)
    shown = await store.messages(conversation.id)
    assert texts(shown) == ["zero"] and places(shown) == [(2, 2)] and root.parent_id is None
    assert await store.show_version(q1.id) == edited.id + 1
    assert texts(await store.messages(conversation.id))[2] == "two, edited"


@pytest.mark.asyncio
async def test_an_empty_branch_can_be_shown_so_the_first_message_can_be_edited(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")
    await chat(store, conversation.id, "one")
    assert await store.set_leaf(conversation.id, None)
    assert await store.messages(conversation.id) == []
    await store.add_message(conversation.id, role="user", content="first, again")
    assert places(await store.messages(conversation.id)) == [(2, 2)]


@pytest.mark.asyncio
async def test_deleting_a_turn_deletes_its_subtree_and_shows_what_remains(store: ConversationStore) -> None:
    conversation = await store.create_conversation(title="t")
    q1, a1, _q2, _a2 = await chat(store, conversation.id, "one", "two")
    await store.set_leaf(conversation.id, q1.id)
    other = await store.add_message(conversation.id, role="assistant", content="other answer")
    # Deleting a branch not shown leaves the branch shown alone.
    assert await store.delete_message(a1.id) == 3
    assert texts(await store.messages(conversation.id)) == ["one", "other answer"]
    assert places(await store.messages(conversation.id))[-1] == (1, 1)
    # Deleting the branch shown shows its parent's newest remaining branch.
    assert await store.delete_message(other.id) == 1
    assert texts(await store.messages(conversation.id)) == ["one"]
    assert await store.delete_message(q1.id) == 1
    assert await store.messages(conversation.id) == []
    assert await store.delete_message(q1.id) == 0  # gone already


@pytest.mark.asyncio
async def test_a_branch_is_a_new_conversation_with_the_path_up_to_the_turn(store: ConversationStore) -> None:
    params = ChatParams(system_prompt="S", temperature=0.3)
    conversation = await store.create_conversation(title="Trip", account_id="acc", model="m", params=params)
    q1, a1, q2, _a2 = await chat(store, conversation.id, "one", "two")
    branch = await store.branch(q2.id)
    assert (branch.title, branch.account_id, branch.model, branch.params) == ("Trip (branch)", "acc", "m", params)
    copied = await store.messages(branch.id)
    assert texts(copied) == ["one", "re: one", "two"]
    assert copied[1].request is not None and copied[1].request.missing == 0
    assert copied[1].request.messages == ({"role": "user", "content": "one"},)
    assert {m.id for m in copied}.isdisjoint({q1.id, a1.id, q2.id})
    assert texts(await store.messages(conversation.id)) == ["one", "re: one", "two", "re: two"]  # untouched
    with pytest.raises(KeyError):
        await store.branch(987654)


@pytest.mark.asyncio
async def test_compare_lanes_share_turns_until_they_diverge_and_become_versions_when_it_ends(
    store: ConversationStore,
) -> None:
    setup = CompareSetup(
        columns=(CompareColumn(account_id="a", model="m1"), CompareColumn(account_id="b", model="m2")), blind=True
    )
    conversation = await store.create_conversation(title="c", compare=setup)
    assert (await store.get_conversation(conversation.id)).compare == setup
    shared = await store.add_message(conversation.id, role="user", content="Q")
    r1 = await store.add_message(conversation.id, role="assistant", content="A1", lane=1, account_id="a", model="m1")
    r2 = await store.add_message(conversation.id, role="assistant", content="A2", lane=2, account_id="b", model="m2")
    assert texts(await store.messages(conversation.id, lane=1)) == ["Q", "A1"]
    assert texts(await store.messages(conversation.id, lane=2)) == ["Q", "A2"]
    # Diverged: each column's follow-up goes after its own reply.
    await store.add_message(conversation.id, role="user", content="Q2", lane=1)
    await store.add_message(conversation.id, role="user", content="Q2", lane=2)
    assert texts(await store.messages(conversation.id, lane=2)) == ["Q", "A2", "Q2"]
    # The user picks column 2's first reply: the next shared turn follows it in every column.
    assert await store.set_vote(r2.id, 1)
    await store.add_message(conversation.id, role="user", content="Q3", parent_id=r2.id)
    await store.add_message(conversation.id, role="assistant", content="B1", lane=1, account_id="a", model="m1")
    assert texts(await store.messages(conversation.id, lane=1)) == ["Q", "A2", "Q3", "B1"]
    assert await store.win_counts() == {("b", "m2"): 1}
    # It becomes an ordinary conversation, ending under the reply kept: the others are versions.
    assert await store.set_compare(conversation.id, None, keep=r1.id)
    assert (await store.get_conversation(conversation.id)).compare is None
    shown = await store.messages(conversation.id)
    assert texts(shown) == ["Q", "A1", "Q2"] and places(shown)[1] == (1, 2) and shared.id == shown[0].id
    assert await store.win_counts() == {("b", "m2"): 1}


@pytest.mark.asyncio
async def test_a_message_cannot_follow_one_of_another_conversation(store: ConversationStore) -> None:
    first = await store.create_conversation(title="a")
    second = await store.create_conversation(title="b")
    [q, _] = await chat(store, first.id, "one")
    with pytest.raises(KeyError):
        await store.add_message(second.id, role="user", content="x", parent_id=q.id)
    assert await store.messages(second.id) == []


@pytest.mark.asyncio
async def test_recovery_from_a_damaged_file_keeps_the_versions_of_each_turn(db_path: Path) -> None:
    store = ConversationStore(db_path)
    await store.open()
    try:
        tree = await store.create_conversation(title="tree")
        q1, a1 = await chat(store, tree.id, "one")
        await store.set_leaf(tree.id, q1.id)
        await store.add_message(tree.id, role="assistant", content="re: one, again")
        filler = await store.create_conversation(title="filler")
        for n in range(300):
            await store.add_message(filler.id, role="user", content=f"filler {n:03d} " + "x" * 200)
    finally:
        await store.close()
    sqlite_stores.damage_page_holding(db_path, b"filler 150 ")
    store = ConversationStore(db_path)
    try:
        assert "damaged" in (await store.open() or "")
        await store.recover()
        shown = await store.messages(tree.id)
        assert texts(shown) == ["one", "re: one, again"] and places(shown) == [(1, 1), (2, 2)]
        await store.show_version(a1.id)
        assert texts(await store.messages(tree.id)) == ["one", "re: one"]
        rest = await store.messages(filler.id)  # the turns after the lost page follow the last one read
        assert rest[0].content.startswith("filler 000") and rest[-1].content.startswith("filler 299")
    finally:
        await store.close()
