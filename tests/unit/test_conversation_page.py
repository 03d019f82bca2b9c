"""The list's pages: a keyset read in the list's order, each page starting after the last row read."""

from __future__ import annotations

import pytest

from desktop_app.services.chat.conversation_library import list_key
from desktop_app.services.chat.conversations import ConversationStore
from tests.unit import sqlite_stores

db_path, store = sqlite_stores.store_fixtures(ConversationStore, "conversations.sqlite3")


@pytest.mark.asyncio
async def test_pages_follow_one_another_in_the_lists_order_pins_first(store: ConversationStore) -> None:
    ids = [(await store.create_conversation(title=f"c{n}")).id for n in range(11)]
    for pinned in (ids[2], ids[7]):
        await store.set_pinned(pinned, True)
    everything = [c.id for c in await store.list_conversations()]
    read, after = [], None
    while page := await store.conversation_page(after=after, limit=3):
        read += [c.id for c in page]
        after = list_key(page[-1])
    assert read == everything and everything[:2] == [ids[7], ids[2]]


@pytest.mark.asyncio
async def test_a_page_through_a_conversation_reads_the_rows_down_to_it_and_no_more_than_asked(
    store: ConversationStore,
) -> None:
    ids = [(await store.create_conversation(title=f"c{n}")).id for n in range(8)]
    everything = [c.id for c in await store.list_conversations()]
    page = await store.conversation_page(limit=100, through_id=ids[1])
    assert [c.id for c in page] == everything[: everything.index(ids[1]) + 1]
    assert await store.conversation_page(after=list_key(page[-1]), limit=10) != []
    short = await store.conversation_page(limit=2, through_id=ids[1])
    assert [c.id for c in short] == everything[:2]
