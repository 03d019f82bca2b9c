"""A long conversation opens at its end: the last messages are rendered first, the earlier ones as
the view scrolls up, each at its own place; a search hit in an early message is still reached."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt

from desktop_app.domain.search import SearchQuery
from desktop_app.ui.chat.stored_transcript import BATCH, FIRST
from tests.ui.conftest import WAIT_MS, run

COUNT = FIRST + 2 * BATCH + 10


def long_conversation(qtbot, app, count: int = COUNT) -> int:
    """A conversation of `count` messages, "Message n" each (an early one about whales)."""
    store = app.store

    async def write() -> int:
        conversation = await store.create_conversation(title="Long")
        for n in range(count):
            extra = " about whales" if n in (3, count - 2) else ""
            role = "user" if n % 2 == 0 else "assistant"
            await store.add_message(conversation.id, role=role, content=f"Message {n}{extra}.")
        return conversation.id

    return run(qtbot, write())


def numbers_shown(transcript) -> list[int]:
    return [int(n) for n in re.findall(r"Message (\d+)", transcript.toPlainText())]


def open_long(qtbot, app) -> None:
    pane = app.chat_pane
    conversation_id = long_conversation(qtbot, app)
    with qtbot.waitSignal(pane.conversation_opened, timeout=WAIT_MS):
        run(qtbot, pane.load_conversations(conversation_id))


def test_a_long_conversation_shows_its_end_first_and_the_rest_as_the_view_scrolls_up(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    open_long(qtbot, modeldesk)
    transcript = pane.transcript
    assert numbers_shown(transcript) == list(range(COUNT - FIRST, COUNT))
    assert transcript.turn_count == COUNT  # the header links name each message by its place in the branch
    bar = transcript.verticalScrollBar()
    assert bar.value() == bar.maximum()  # at the end
    while pane.stored.earlier:
        shown = len(numbers_shown(transcript))
        bar.setValue(0)
        qtbot.waitUntil(lambda shown=shown: len(numbers_shown(transcript)) > shown, timeout=WAIT_MS)
        assert bar.value() > 0  # the view kept its place: what was on top is still in view
    assert numbers_shown(transcript) == list(range(COUNT))
    assert transcript.turn_count == COUNT
    first_links = re.findall(r'href="turn:edit:(\d+)"', transcript.toHtml())
    assert [int(place) for place in first_links] == list(range(0, COUNT, 2))


def test_opening_a_hit_in_an_early_message_reaches_it_with_next_and_previous(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    conversation_id = long_conversation(qtbot, modeldesk)
    run(qtbot, pane.load_conversations())
    query = SearchQuery(text="whales")
    hits = [h for h in run(qtbot, modeldesk.store.search(query)) if h.message_id is not None]
    early = min(hits, key=lambda h: h.message_id)
    assert early.conversation_id == conversation_id
    run(qtbot, pane.open_hit(query, early))
    bar = pane.find_bar
    assert (bar.count, bar.current) == (2, 0)
    assert "Message 3 about whales" in pane.transcript.textCursor().block().text()
    qtbot.mouseClick(bar.next_button, Qt.MouseButton.LeftButton)
    assert f"Message {COUNT - 2} about whales" in pane.transcript.textCursor().block().text()
    qtbot.mouseClick(bar.previous_button, Qt.MouseButton.LeftButton)
    assert "Message 3 about whales" in pane.transcript.textCursor().block().text()
