"""The conversation library: the schema-4 file migrated and indexed, search with snippets and
filters, pins and tags, and an index that matches the messages after a writer is killed mid-reply."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.search import MATCH_END, MATCH_START, SearchQuery, match_expression
from desktop_app.services.chat.conversation_library import listing_statement, message_statement, title_statement
from desktop_app.services.chat.conversations import SCHEMA_VERSION, ConversationStore
from tests.unit import sqlite_stores

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "conversations-schema4.sqlite3"

db_path, store = sqlite_stores.store_fixtures(ConversationStore, "conversations.sqlite3")


def undo_schema_5(conn: sqlite3.Connection) -> None:
    """Take a current file back to schema 4, for tests that fake an older build's file."""
    for kind, name in conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'index') AND"
        " name IN ('conversations_by_pin', 'tags_by_name', 'messages_failed') OR name LIKE '%_text_%ed'"
    ).fetchall():
        conn.execute(f"DROP {kind} {name}")
    for table in ("message_text", "title_text", "tags"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP VIEW searchable_messages")
    conn.execute("ALTER TABLE conversations DROP COLUMN pinned")
    conn.execute("PRAGMA user_version = 4")


def marked(snippet: str) -> str:
    return snippet.replace(MATCH_START, "[").replace(MATCH_END, "]")


def index_mismatches(path: Path) -> list[str]:
    """What FTS5's own check finds wrong between each index and its text (the finished user and
    assistant messages, the titles), from a second connection: [] when they match."""
    problems = []
    with sqlite_stores.raw(path) as conn:
        for table in ("message_text", "title_text"):
            try:
                conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as exc:
                problems.append(f"{table}: {exc}")
    conn.close()
    return problems


async def search(store: ConversationStore, text: str = "", **filters) -> list[tuple[int, int | None, str]]:
    hits = await store.search(SearchQuery(text=text, **filters))
    return [(h.conversation_id, h.message_id, marked(h.snippet)) for h in hits]


def test_what_the_user_types_is_words_not_fts_syntax() -> None:
    assert match_expression('lee* "soup" OR NEAR(') == '"lee" "soup" "OR" "NEAR"*'
    assert match_expression("  ?! ") is None


@pytest.mark.asyncio
async def test_a_schema_4_database_is_migrated_and_indexed_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    shutil.copyfile(FIXTURE, path)
    with sqlite_stores.raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        before = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
    conn.close()
    store = ConversationStore(path)
    await store.open()
    try:
        assert sqlite_stores.journal_mode_and_version(path)[1] == SCHEMA_VERSION == 5
        with sqlite_stores.raw(path) as conn:
            assert conn.execute("SELECT * FROM messages ORDER BY id").fetchall() == before
        conn.close()
        assert index_mismatches(path) == []
        # Finished text is found; a reply still streaming when that build stopped is not (yet).
        assert await search(store, "antarctic") == [(1, 2, "Emperor penguins breed on the [Antarctic] sea ice.")]
        assert await search(store, "butter") == []
        assert await search(store, "zeppelin") == []  # deleted before the migration
        assert [c.pinned for c in await store.list_conversations()] == [False, False, False]
        await store.recover_interrupted()
        assert {h[0] for h in await search(store, "butter")} == {2, 3}
        assert index_mismatches(path) == []
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_titles_and_message_text_are_found_with_the_match_highlighted(store: ConversationStore) -> None:
    trip = await store.create_conversation(title="Trip to Lisbon", model="gpt-4o", account_id="work")
    question = await store.add_message(trip.id, role="user", content="Where should I eat in Lisbon?")
    reply = await store.add_message(trip.id, role="assistant", content="Try the pastéis de nata in Belém.")
    await store.add_message(trip.id, role="tool", content="lisbon weather tool output")
    other = await store.create_conversation(title="Cooking", model="llama3", account_id="home")
    rice = await store.add_message(other.id, role="user", content="How do I cook <b>rice</b> & beans?")

    assert await search(store, "lisbon") == [
        (trip.id, None, "Trip to [Lisbon]"),
        (trip.id, question.id, "Where should I eat in [Lisbon]?"),
    ]
    assert await search(store, "past") == [(trip.id, reply.id, "Try the [pastéis] de nata in Belém.")]
    assert await search(store, "belem") == [(trip.id, reply.id, "Try the pastéis de nata in [Belém].")]
    assert await search(store, "eat lis") == [(trip.id, question.id, "Where should I [eat] in [Lisbon]?")]
    # The snippet is the stored text as it is: the UI escapes it for rich text.
    assert await search(store, "rice") == [(other.id, rice.id, "How do I cook <b>[rice]</b> & beans?")]
    await store.rename_conversation(trip.id, "Portugal")
    assert [h[1] for h in await search(store, "lisbon")] == [question.id]
    assert await search(store, "portugal") == [(trip.id, None, "[Portugal]")]


@pytest.mark.asyncio
async def test_reasoning_is_searched_only_when_asked(store: ConversationStore) -> None:
    c = await store.create_conversation(title="t")
    reply = await store.add_message(c.id, role="assistant", content="Forty-two.")
    await store.update_message(reply.id, reasoning="The user wants the ultimate answer.")
    assert await search(store, "ultimate") == []
    assert await search(store, "ultimate", reasoning=True) == [
        (c.id, reply.id, "The user wants the [ultimate] answer.")
    ]
    assert await store.match_ids(c.id, "ultimate", reasoning=True) == [reply.id]


@pytest.mark.asyncio
async def test_a_reply_is_indexed_when_it_stops_streaming_not_on_each_partial_save(
    store: ConversationStore, db_path: Path
) -> None:
    c = await store.create_conversation(title="t")
    reply = await store.add_message(c.id, role="assistant", content="", status=MessageStatus.STREAMING)
    await store.update_message(reply.id, content="Once upon a")
    assert await search(store, "once") == []
    with sqlite_stores.raw(db_path) as conn:  # the index itself, not only what search() shows
        assert conn.execute("SELECT COUNT(*) FROM message_text WHERE message_text MATCH 'once'").fetchone() == (0,)
    conn.close()
    await store.update_message(reply.id, content="Once upon a time", status=MessageStatus.STOPPED)
    assert await search(store, "time") == [(c.id, reply.id, "Once upon a [time]")]
    assert index_mismatches(db_path) == []


@pytest.mark.asyncio
async def test_deleted_messages_and_conversations_leave_the_index(store: ConversationStore, db_path: Path) -> None:
    c = await store.create_conversation(title="Kiwi")
    first = await store.add_message(c.id, role="user", content="kiwi one")
    await store.add_message(c.id, role="assistant", content="kiwi two")
    branch = await store.branch(first.id)
    assert len(await search(store, "kiwi")) == 5  # two titles, three messages
    await store.delete_message(first.id)  # and the reply after it
    assert [h[0] for h in await search(store, "kiwi")] == [branch.id, c.id, branch.id]
    await store.delete_conversation(branch.id)
    assert [h[:2] for h in await search(store, "kiwi")] == [(c.id, None)]
    assert index_mismatches(db_path) == []


@pytest.mark.asyncio
async def test_filters_keep_only_what_they_name_and_pages_do_not_overlap(store: ConversationStore) -> None:
    work = await store.create_conversation(title="Work", model="gpt-4o", account_id="work")
    home = await store.create_conversation(title="Home", model="llama3", account_id="home")
    for n in range(5):
        await store.add_message(work.id, role="user", content=f"plan {n}")
    at_home = await store.add_message(home.id, role="user", content="plan at home")
    failed = await store.add_message(home.id, role="assistant", content="", status=MessageStatus.STREAMING)
    await store.update_message(failed.id, status=MessageStatus.FAILED, error="gone")
    await store.set_pinned(work.id, True)
    await store.set_tags(home.id, ["family"])

    assert {h[0] for h in await search(store, "plan", model="llama3")} == {home.id}
    assert {h[0] for h in await search(store, "plan", account_id="work")} == {work.id}
    assert {h[0] for h in await search(store, "plan", has_errors=True)} == {home.id}
    assert {h[0] for h in await search(store, "plan", pinned=True)} == {work.id}
    assert {h[0] for h in await search(store, "plan", tag="FAMILY")} == {home.id}
    [newest] = await store.search(SearchQuery(text="plan 4"))
    assert [h[1] for h in await search(store, "plan", since=newest.when)] == [at_home.id, newest.message_id]
    assert len(await search(store, "plan", until=newest.when)) == 5
    # Filters without words list the conversations they keep, pinned first.
    assert await search(store, "", model="gpt-4o") == [(work.id, None, "Work")]
    pages = [await store.search(SearchQuery(text="plan"), limit=2, offset=o) for o in (0, 2, 4, 6)]
    ids = [h.message_id for page in pages for h in page]
    assert [len(p) for p in pages] == [2, 2, 2, 0] and len(set(ids)) == 6
    assert ids == sorted(ids, reverse=True)


@pytest.mark.asyncio
async def test_pins_come_first_and_tags_are_kept_trimmed_once_each(store: ConversationStore) -> None:
    old = await store.create_conversation(title="Old")
    new = await store.create_conversation(title="New")
    assert [c.id for c in await store.list_conversations()] == [new.id, old.id]
    assert await store.set_pinned(old.id, True)
    listed = await store.list_conversations()
    assert [(c.id, c.pinned) for c in listed] == [(old.id, True), (new.id, False)]
    assert await store.set_tags(old.id, [" rust ", "Work", "work", "", "big   ideas"]) == ("big ideas", "rust", "Work")
    assert (await store.get_conversation(old.id)).tags == ("big ideas", "rust", "Work")
    assert await store.search_choices() == ([], [], ["big ideas", "rust", "Work"])
    assert await store.set_tags(old.id, []) == ()
    assert (await store.get_conversation(old.id)).tags == ()
    with pytest.raises(KeyError):
        await store.set_tags(12345, ["x"])


@pytest.mark.asyncio
async def test_pages_run_on_from_the_titles_into_the_messages(store: ConversationStore) -> None:
    titled = [await store.create_conversation(title=f"otter {n}") for n in range(3)]
    said = [await store.add_message(titled[0].id, role="user", content=f"otters {n}") for n in range(5)]
    pages = [await store.search(SearchQuery(text="otter"), limit=2, offset=o) for o in range(0, 10, 2)]
    assert [[(h.conversation_id, h.message_id) for h in page] for page in pages] == [
        [(titled[2].id, None), (titled[1].id, None)],
        [(titled[0].id, None), (titled[0].id, said[4].id)],
        [(titled[0].id, said[3].id), (titled[0].id, said[2].id)],
        [(titled[0].id, said[1].id), (titled[0].id, said[0].id)],
        [],
    ]


@pytest.mark.asyncio
async def test_a_page_is_read_in_the_index_order_without_sorting_every_match(
    store: ConversationStore, db_path: Path
) -> None:
    # A common word matches most messages: a page must not sort (and snippet) all of them first.
    with sqlite_stores.raw(db_path) as conn:
        for query in (SearchQuery(text="the"), SearchQuery(text="the", reasoning=True, has_errors=True)):
            for sql, args in (title_statement(query, '"the"*'), message_statement(query, '"the"*')):
                plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, [*args, 50, 0]))
                assert "TEMP B-TREE" not in plan, plan
                assert "SCAN e" not in plan, plan  # has-errors: one lookup per hit
        sql, args = listing_statement(SearchQuery(pinned=True), 50, 0)
        plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "TEMP B-TREE" not in plan, plan
    conn.close()


@pytest.mark.asyncio
async def test_a_file_taken_back_to_schema_4_migrates_again(store: ConversationStore, db_path: Path) -> None:
    c = await store.create_conversation(title="Back and forth")
    said = await store.add_message(c.id, role="user", content="again")
    await store.close()
    with sqlite_stores.raw(db_path) as conn:
        undo_schema_5(conn)
        assert (
            conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%text%' OR name LIKE '%tag%'").fetchall()
            == []
        )
    conn.close()
    reopened = ConversationStore(db_path)
    await reopened.open()
    try:
        assert [h.message_id for h in await reopened.search(SearchQuery(text="again"))] == [said.id]
    finally:
        await reopened.close()


@pytest.mark.asyncio
async def test_the_index_check_finds_text_the_index_does_not_hold(store: ConversationStore, db_path: Path) -> None:
    # The check the other tests rely on, shown to fail: a change made behind the triggers' back.
    c = await store.create_conversation(title="Checked")
    said = await store.add_message(c.id, role="user", content="indexed words")
    assert index_mismatches(db_path) == []
    with sqlite_stores.raw(db_path) as conn:
        conn.execute("DROP TRIGGER message_text_changed")
        conn.execute("UPDATE messages SET content = 'other words' WHERE id = ?", (said.id,))
    conn.close()
    assert index_mismatches(db_path) != []
