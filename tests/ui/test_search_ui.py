"""Search from the window: the field above the list, results as you type with the match marked,
opening a hit at its match with next/previous, the filters, pins and tags from the list's menu."""

from __future__ import annotations

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import QInputDialog

from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.search import SearchHit
from desktop_app.ui.chat.models import PIN_MARK
from desktop_app.ui.chat.search_results import PAGE, hit_html
from tests.ui.conftest import WAIT_MS, run


def fill(qtbot, app) -> dict[str, int]:
    """Three conversations, written through the store as the app writes them."""
    store = app.store

    async def write() -> dict[str, int]:
        ids = {}
        trip = await store.create_conversation(title="Trip planning", model="gpt-4o", account_id="acc-work")
        for n in range(3):
            await store.add_message(trip.id, role="user", content=f"Question {n} about the ferry to Lisbon?")
            await store.add_message(trip.id, role="assistant", content=f"Answer {n}: the Lisbon ferry leaves hourly.")
        ids["trip"] = trip.id
        soup = await store.create_conversation(title="Soup <recipes> & more", model="llama3", account_id="acc-home")
        await store.add_message(soup.id, role="user", content="Leek soup with a <b>ferry</b> of bread")
        failed = await store.add_message(soup.id, role="assistant", content="", status=MessageStatus.STREAMING)
        await store.update_message(failed.id, status=MessageStatus.FAILED, error="The server went away.")
        ids["soup"] = soup.id
        ids["empty"] = (await store.create_conversation(title="Nothing here")).id
        return ids

    ids = run(qtbot, write())
    run(qtbot, app.chat_pane.load_conversations())
    return ids


def type_query(qtbot, pane, text: str) -> None:
    panel = pane.search_panel
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.field.setText(text)  # the debounce timer runs the search once typing pauses


def shown_hits(pane) -> list[SearchHit]:
    results = pane.search_panel.results
    return [results.hit_at(row) for row in range(results.rowCount())]


def test_typing_shows_results_in_place_of_the_list_and_clearing_brings_it_back(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    box = pane.conversations_box
    assert not box.view.isHidden() and pane.search_panel.view.isHidden()
    type_query(qtbot, pane, "ferr")
    hits = shown_hits(pane)
    assert [h.conversation_id for h in hits] == [ids["soup"]] + [ids["trip"]] * 6
    assert not pane.search_panel.view.isHidden() and box.view.isHidden()
    type_query(qtbot, pane, "zzzz")
    assert pane.search_panel.status.text() == "Nothing found."
    type_query(qtbot, pane, "")
    assert not box.view.isHidden() and pane.search_panel.view.isHidden()


def test_a_hit_shows_title_date_model_and_the_snippet_escaped_with_the_match_marked() -> None:
    hit = SearchHit(1, 7, "A <title>", "bread & \x02ferry\x03 <b>", 0.0, "llama3", "acc")
    html = hit_html(hit, mark="yellow", dim="gray", account="Home")
    assert "<b>A &lt;title&gt;</b>" in html
    assert 'bread &amp; <b style="background-color:yellow">ferry</b> &lt;b&gt;' in html
    assert "llama3 · Home" in html


def test_enter_opens_the_conversation_at_the_match_and_next_previous_walk_the_matches(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    type_query(qtbot, pane, "hourly")
    hits = shown_hits(pane)
    assert [h.message_id is not None for h in hits] == [True] * 3
    pane.search_panel.view.setCurrentIndex(pane.search_panel.results.index(1))  # the second answer
    with qtbot.waitSignal(pane.conversation_opened, timeout=WAIT_MS):
        qtbot.keyClick(pane.search_panel.field, Qt.Key.Key_Return)
    bar = pane.find_bar
    qtbot.waitUntil(lambda: not bar.isHidden(), timeout=WAIT_MS)
    assert pane.current_conversation.id == ids["trip"]
    assert (bar.count, bar.current, bar.label.text()) == (3, 1, "Match 2 of 3")
    assert bar.selected_text() == "hourly"
    cursor = pane.transcript.textCursor()
    assert "Answer 1: the Lisbon ferry leaves hourly." in cursor.block().text()
    qtbot.mouseClick(bar.next_button, Qt.MouseButton.LeftButton)
    assert bar.current == 2 and "Answer 2" in pane.transcript.textCursor().block().text()
    qtbot.mouseClick(bar.next_button, Qt.MouseButton.LeftButton)
    assert bar.current == 0  # round again
    qtbot.mouseClick(bar.previous_button, Qt.MouseButton.LeftButton)
    assert bar.current == 2
    qtbot.mouseClick(bar.close_button, Qt.MouseButton.LeftButton)
    assert bar.isHidden() and pane.transcript.extraSelections() == []


def test_a_click_on_a_title_hit_opens_it_and_selects_it_in_the_list(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    type_query(qtbot, pane, "soup")
    first = pane.search_panel.results.index(0)
    assert first.data(Qt.ItemDataRole.UserRole).message_id is None  # the title's hit comes first
    view = pane.search_panel.view
    with qtbot.waitSignal(pane.conversation_opened, timeout=WAIT_MS):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(first).center())
    assert pane.current_conversation.id == ids["soup"]
    row = pane.conversations.row_of(ids["soup"])
    assert pane.conversations_box.view.currentIndex().row() == row
    assert not pane.find_bar.isHidden() and pane.find_bar.selected_text() == "soup"  # the first in the transcript
    # Another conversation opened from the list: the matches were places in the old transcript.
    with qtbot.waitSignal(pane.conversation_opened, timeout=WAIT_MS):
        pane.conversations_box.view.setCurrentIndex(pane.conversations.index(pane.conversations.row_of(ids["trip"])))
    assert pane.find_bar.isHidden() and pane.transcript.extraSelections() == []


def test_a_hit_found_without_its_accents_is_marked_in_the_transcript_as_the_index_found_it(qtbot, modeldesk) -> None:
    """The index folds diacritics (and "café" finds "cafe"); the find bar marks what it found, and
    knows that "Straße" and "Ελλάδα" are whole words."""
    pane = modeldesk.chat_pane
    store = modeldesk.store

    async def write() -> int:
        trip = await store.create_conversation(title="Abroad")
        await store.add_message(trip.id, role="user", content="Le café est fermé: Straße nach Ελλάδα.")
        await store.add_message(trip.id, role="assistant", content="Try the other cafe, or the Strasse.")
        return trip.id

    trip = run(qtbot, write())
    run(qtbot, pane.load_conversations())
    bar = pane.find_bar
    for query, count, first in (("cafe ferme", 3, "café"), ("café", 2, "cafe"), ("straße ελλάδα", 2, "Straße")):
        type_query(qtbot, pane, query)
        assert [h.conversation_id for h in shown_hits(pane)][:1] == [trip], query
        pane.search_panel.view.setCurrentIndex(pane.search_panel.results.index(0))
        qtbot.keyClick(pane.search_panel.field, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not bar.isHidden() and bar.count > 0, timeout=WAIT_MS)
        assert (bar.count, bar.selected_text()) == (count, first), query  # at the hit's own match
        bar.dismiss()


def test_filters_narrow_the_results(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    panel = pane.search_panel
    qtbot.mouseClick(panel.filters_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.model_filter.count() == 3, timeout=WAIT_MS)  # any, gpt-4o, llama3
    type_query(qtbot, pane, "ferry")
    assert len(shown_hits(pane)) == 7
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.model_filter.setCurrentIndex(panel.model_filter.findData("llama3"))
    assert {h.conversation_id for h in shown_hits(pane)} == {ids["soup"]}
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.model_filter.setCurrentIndex(0)
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.account_filter.setCurrentIndex(panel.account_filter.findData("acc-work"))
    assert {h.conversation_id for h in shown_hits(pane)} == {ids["trip"]}
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.account_filter.setCurrentIndex(0)
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.has_errors.setChecked(True)
    assert {h.conversation_id for h in shown_hits(pane)} == {ids["soup"]}
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.has_errors.setChecked(False)
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.since.setDate(QDate.currentDate().addDays(1))
        panel.dates.setChecked(True)
    assert shown_hits(pane) == [] and panel.status.text() == "Nothing found."
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.since.setDate(QDate.currentDate())
    assert len(shown_hits(pane)) == 7
    # Filters without words list the conversations they keep.
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.dates.setChecked(False)
        panel.field.clear()
        panel.pinned.setChecked(True)
    assert shown_hits(pane) == [] and panel.status.text() == "No conversation matches these filters."


def test_pin_and_tags_from_the_lists_menu_and_the_tag_filter(qtbot, modeldesk, monkeypatch) -> None:
    pane = modeldesk.chat_pane
    ids = fill(qtbot, modeldesk)
    model = pane.conversations
    assert model.conversation_at(model.rowCount() - 1).id == ids["trip"]  # the oldest
    menu = pane.conversation_menu(model.row_of(ids["trip"]))
    pin, tags = menu.actions()[:2]
    assert (pin.text(), tags.text()) == ("Pin to top", "Tags…")
    pin.trigger()
    qtbot.waitUntil(lambda: model.conversation_at(0).id == ids["trip"], timeout=WAIT_MS)
    assert model.index(0).data().startswith(PIN_MARK)
    assert pane.conversation_menu(0).actions()[0].text() == "Unpin"

    dialogs: list[QInputDialog] = []
    monkeypatch.setattr(QInputDialog, "open", lambda self: dialogs.append(self))  # what the user sees
    pane.conversation_menu(model.row_of(ids["soup"])).actions()[1].trigger()
    [dialog] = dialogs
    dialog.textValueSelected.emit("cooking,  weekend , Cooking")
    qtbot.waitUntil(
        lambda: model.conversation_at(model.row_of(ids["soup"])).tags == ("cooking", "weekend"), timeout=WAIT_MS
    )
    assert model.index(model.row_of(ids["soup"])).data().endswith("#cooking  #weekend")

    panel = pane.search_panel
    qtbot.mouseClick(panel.filters_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.tag_filter.findData("weekend") > 0, timeout=WAIT_MS)
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.tag_filter.setCurrentIndex(panel.tag_filter.findData("weekend"))
    assert [h.conversation_id for h in shown_hits(pane)] == [ids["soup"]]
    with qtbot.waitSignal(panel.searched, timeout=WAIT_MS):
        panel.tag_filter.setCurrentIndex(0)
        panel.pinned.setChecked(True)
    assert [h.conversation_id for h in shown_hits(pane)] == [ids["trip"]]
    # A new message in a conversation that is not pinned keeps it below the pinned one.
    soup = run(qtbot, modeldesk.store.get_conversation(ids["soup"]))
    model.upsert_front(soup)
    assert [model.conversation_at(r).id for r in (0, 1)] == [ids["trip"], ids["soup"]]


def test_the_models_answer_qt_as_models_should(qtbot, modeldesk, qtmodeltester) -> None:
    pane = modeldesk.chat_pane
    fill(qtbot, modeldesk)
    type_query(qtbot, pane, "ferry")
    qtmodeltester.check(pane.search_panel.results, force_py=True)
    qtmodeltester.check(pane.conversations, force_py=True)


def test_more_results_are_read_as_the_list_scrolls_down(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    store = modeldesk.store

    async def write() -> None:
        conversation = await store.create_conversation(title="Many")
        for n in range(PAGE + 10):
            await store.add_message(conversation.id, role="user", content=f"walrus number {n}")

    run(qtbot, write())
    type_query(qtbot, pane, "walrus")
    results = pane.search_panel.results
    assert results.rowCount() == PAGE and results.canFetchMore()
    pane.search_panel.view.scrollToBottom()  # the view asks the model for more at the end
    qtbot.waitUntil(lambda: results.rowCount() == PAGE + 10, timeout=WAIT_MS)
    assert not results.canFetchMore()
    assert results.hit_at(PAGE + 9).snippet.endswith("number 0")
