"""The conversation list reads its rows a page at a time as it scrolls, in the list's order (the
pinned first), keeping the selection, and a conversation used meanwhile is never listed twice."""

from __future__ import annotations

from desktop_app.ui.chat.models import ID_ROLE, PAGE
from tests.ui.conftest import WAIT_MS, run

COUNT = PAGE * 2 + 30


def fill(qtbot, app, count: int = COUNT, pinned: tuple[int, ...] = (5, 150, 220)) -> list[int]:
    """`count` conversations, oldest first, those at the places `pinned` pinned; their ids."""
    store = app.store

    async def write() -> list[int]:
        ids = []
        for n in range(count):
            conversation = await store.create_conversation(title=f"Chat {n}")
            if n in pinned:
                await store.set_pinned(conversation.id, True)
            ids.append(conversation.id)
        return ids

    return run(qtbot, write())


def listed(model) -> list[int]:
    return [model.conversation_at(row).id for row in range(model.rowCount())]


def scroll_to_the_end(qtbot, view, total: int) -> None:
    """Scroll down as a user does until the view has read all `total` rows."""
    model = view.model()
    while model.rowCount() < total:
        rows = model.rowCount()
        view.scrollToBottom()
        qtbot.waitUntil(lambda rows=rows: model.rowCount() > rows, timeout=WAIT_MS)
    assert not model.canFetchMore() or model.rowCount() == total


def test_the_list_shows_a_page_and_reads_more_as_it_scrolls_in_order_pins_first(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    fill(qtbot, modeldesk)
    model, view = pane.conversations, pane.conversations_box.view
    run(qtbot, pane.load_conversations())
    assert model.rowCount() == PAGE
    first = view.currentIndex().row(), model.conversation_at(0).id
    everything = [c.id for c in run(qtbot, modeldesk.store.list_conversations())]
    assert [model.conversation_at(r).pinned for r in range(4)] == [True, True, True, False]
    scroll_to_the_end(qtbot, view, len(everything))
    assert listed(model) == everything
    assert (view.currentIndex().row(), model.conversation_at(0).id) == first  # the selection stayed


def test_the_conversation_to_reopen_is_selected_even_past_the_first_page(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    oldest = ids[0]
    run(qtbot, pane.load_conversations(oldest))
    view = pane.conversations_box.view
    assert view.currentIndex().data(ID_ROLE) == oldest
    qtbot.waitUntil(lambda: (c := pane.current_conversation) is not None and c.id == oldest, timeout=WAIT_MS)
    everything = [c.id for c in run(qtbot, modeldesk.store.list_conversations())]
    assert listed(pane.conversations) == everything[: everything.index(oldest) + 1]


def test_a_conversation_to_reopen_beyond_the_lists_reach_opens_at_once_and_is_picked_when_its_row_comes(
    qtbot, modeldesk
) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    model, view = pane.conversations, pane.conversations_box.view
    model.reach = PAGE // 2  # rows read past the first page to find it: fewer than lie above the oldest
    oldest = ids[0]
    run(qtbot, pane.load_conversations(oldest))
    qtbot.waitUntil(lambda: (c := pane.current_conversation) is not None and c.id == oldest, timeout=WAIT_MS)
    assert model.rowCount() == PAGE + PAGE // 2 and model.row_of(oldest) == -1
    assert not view.currentIndex().isValid()  # no other conversation looks picked
    opened = pane.current_conversation
    scroll_to_the_end(qtbot, view, COUNT)  # its row comes as the list scrolls, once, and is picked then
    assert listed(model).count(oldest) == 1
    assert view.currentIndex().data(ID_ROLE) == oldest and pane.current_conversation is opened  # not reopened


def test_a_conversation_used_while_pages_remain_is_moved_to_the_front_and_not_read_again(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    model, view = pane.conversations, pane.conversations_box.view
    run(qtbot, pane.load_conversations())
    # The oldest unpinned conversation on the first page gets a message: the front, below the pins.
    last_on_page = model.conversation_at(PAGE - 1)
    run(qtbot, modeldesk.store.add_message(last_on_page.id, role="user", content="hello again"))
    model.upsert_front(run(qtbot, modeldesk.store.get_conversation(last_on_page.id)))
    assert model.conversation_at(3).id == last_on_page.id
    created = run(qtbot, pane.new_conversation())
    assert model.conversation_at(3).id == created.id
    everything = [c.id for c in run(qtbot, modeldesk.store.list_conversations())]
    scroll_to_the_end(qtbot, view, len(everything))
    assert listed(model) == everything
    assert len(everything) == len(ids) + 1


def test_a_pinned_page_first_keeps_an_unpinned_conversation_for_its_own_page(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk, count=PAGE + 20, pinned=tuple(range(1, PAGE + 11)))
    model = pane.conversations
    run(qtbot, pane.load_conversations())
    unpinned = run(qtbot, modeldesk.store.get_conversation(ids[0]))
    run(qtbot, modeldesk.store.add_message(unpinned.id, role="user", content="still here"))
    model.upsert_front(run(qtbot, modeldesk.store.get_conversation(unpinned.id)))
    assert unpinned.id not in listed(model)  # its place is past pinned ones not read yet
    everything = [c.id for c in run(qtbot, modeldesk.store.list_conversations())]
    scroll_to_the_end(qtbot, pane.conversations_box.view, len(everything))
    assert listed(model) == everything


def test_the_paged_list_answers_qt_as_a_model_should(qtbot, modeldesk, qtmodeltester) -> None:
    pane = modeldesk.chat_pane
    fill(qtbot, modeldesk)
    run(qtbot, pane.load_conversations())
    qtmodeltester.check(pane.conversations, force_py=True)
