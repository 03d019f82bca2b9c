"""Iterating on a turn in the chat pane: regenerate, edit, delete, branch and the "‹ 2/3 ›" versions,
through the transcript's own links, the real services and the loopback fault server."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QMessageBox

from desktop_app.domain.conversations import MessageStatus
from desktop_app.ui.chat.turn_actions import OUT_OF_DATE, WHILE_STREAMING
from tests.ui.conftest import WAIT_MS, run
from tests.unit import sqlite_stores

LOCKED = "The conversation history database is locked by another program"


def links(transcript) -> dict[str, str]:
    """The transcript's links (href -> text), in the order they are shown."""
    found: dict[str, str] = {}
    block = transcript.document().begin()
    while block.isValid():
        fragments = block.begin()
        while not fragments.atEnd():
            fragment = fragments.fragment()
            if fragment.charFormat().isAnchor():
                found[fragment.charFormat().anchorHref()] = fragment.text()
            fragments += 1
        block = block.next()
    return found


def click(pane, href: str) -> None:
    """Use a link the transcript shows (as a click on it does)."""
    assert href in links(pane.transcript), (href, links(pane.transcript))
    pane.transcript.anchorClicked.emit(QUrl(href))


def send(qtbot, pane, text: str, expect: str = "complete") -> None:
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [expect]


def stored(qtbot, app):
    return run(qtbot, app.store.messages(app.chat_pane.current_conversation.id))


@pytest.fixture
def pane(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    return pane


def test_every_message_offers_its_actions(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    assert links(pane.transcript) == {
        "turn:edit:0": "Edit",
        "turn:delete:0": "Delete",
        "turn:branch:0": "Branch",
        "turn:regenerate:1": "Regenerate",
        "turn:delete:1": "Delete",
        "turn:branch:1": "Branch",
        "request:0": "View as code",
    }
    run(qtbot, pane.open_conversation(pane.current_conversation))  # as stored: the same links
    assert list(links(pane.transcript)) == [
        "turn:edit:0",
        "turn:delete:0",
        "turn:branch:0",
        "turn:regenerate:1",
        "turn:delete:1",
        "turn:branch:1",
        "request:0",
    ]


def test_regenerate_then_switch_versions(qtbot, modeldesk, pane, fault_server):
    send(qtbot, pane, "first")
    send(qtbot, pane, "second")
    first_reply = stored(qtbot, modeldesk)[1]

    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        click(pane, "turn:regenerate:1")
    assert blocker.args == ["complete"]
    # The new answer is the reply's second version; the branch shown ends with it.
    shown = pane.transcript.toPlainText()
    assert "‹ 2/2 ›" in shown and "second" not in shown
    messages = stored(qtbot, modeldesk)
    assert [(m.role, m.version, m.versions) for m in messages] == [("user", 1, 1), ("assistant", 2, 2)]
    assert messages[1].status is MessageStatus.COMPLETE and messages[1].id != first_reply.id
    body = [r for r in fault_server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert [m["content"] for m in body["messages"]] == ["first"]  # the question again, nothing after it
    assert "turn:next:1" not in links(pane.transcript)  # the newest has no next

    # ‹ shows the first version with its whole continuation.
    click(pane, "turn:previous:1")
    qtbot.waitUntil(lambda: "second" in pane.transcript.toPlainText(), timeout=WAIT_MS)
    assert "‹ 1/2 ›" in pane.transcript.toPlainText()
    assert [m.id for m in stored(qtbot, modeldesk)][1] == first_reply.id
    assert len(stored(qtbot, modeldesk)) == 4 and pane.transcript.turn_count == 4

    click(pane, "turn:next:1")
    qtbot.waitUntil(lambda: "second" not in pane.transcript.toPlainText(), timeout=WAIT_MS)
    assert "‹ 2/2 ›" in pane.transcript.toPlainText()


def test_edit_sends_a_new_version_and_the_old_one_stays(qtbot, modeldesk, pane, fault_server):
    send(qtbot, pane, "first")
    send(qtbot, pane, "second")
    pane.composer.setPlainText("a draft of the next message")
    click(pane, "turn:edit:2")
    box = pane.turns.edit_box
    qtbot.waitUntil(lambda: not box.isHidden(), timeout=WAIT_MS)
    assert box.editor.toPlainText() == "second"
    box.editor.setPlainText("second, edited")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        qtbot.keyClick(box.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == ["complete"]
    assert box.isHidden()
    assert pane.composer.toPlainText() == "a draft of the next message"  # the composer's draft is untouched
    body = [r for r in fault_server.requests if r.path.endswith("/chat/completions")][-1].json()
    assert [m["content"] for m in body["messages"]][-1] == "second, edited"
    messages = stored(qtbot, modeldesk)
    assert [(m.content.split()[0], m.version, m.versions) for m in messages][2] == ("second,", 2, 2)
    assert "‹ 2/2 ›" in pane.transcript.toPlainText()

    click(pane, "turn:previous:2")
    qtbot.waitUntil(lambda: "‹ 1/2 ›" in pane.transcript.toPlainText(), timeout=WAIT_MS)
    assert [m.content for m in stored(qtbot, modeldesk)][2] == "second"
    assert pane.transcript.turn_count == 4


def test_escape_cancels_an_edit_and_nothing_is_stored(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    click(pane, "turn:edit:0")
    box = pane.turns.edit_box
    qtbot.waitUntil(lambda: not box.isHidden(), timeout=WAIT_MS)
    box.editor.setPlainText("never mind")
    qtbot.keyClick(box.editor, Qt.Key.Key_Escape)
    assert box.isHidden() and pane.turns.editing is None
    assert stored(qtbot, modeldesk)[0].content == "first"
    assert run(qtbot, modeldesk.store.versions(stored(qtbot, modeldesk)[0].id)) == [stored(qtbot, modeldesk)[0].id]


def test_an_edit_under_way_is_kept_with_its_conversation_while_another_is_open(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    editing = pane.current_conversation
    click(pane, "turn:edit:0")
    box = pane.turns.edit_box
    qtbot.waitUntil(lambda: not box.isHidden(), timeout=WAIT_MS)
    box.editor.setPlainText("first, said better")
    other = run(qtbot, pane.new_conversation())
    assert box.isHidden() and pane.turns.editing is None and pane.current_conversation is other
    run(qtbot, pane.open_conversation(editing))
    assert not box.isHidden() and box.editor.toPlainText() == "first, said better"
    assert pane.turns.editing is not None and pane.turns.editing.content == "first"


def test_an_empty_edit_is_refused_in_the_box(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    click(pane, "turn:edit:0")
    box = pane.turns.edit_box
    qtbot.waitUntil(lambda: not box.isHidden(), timeout=WAIT_MS)
    box.editor.setPlainText("   ")
    qtbot.mouseClick(box.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not box.problem.isHidden(), timeout=WAIT_MS)
    assert "the message is empty" in box.problem.text()
    assert not box.isHidden() and len(stored(qtbot, modeldesk)) == 2


def test_delete_asks_how_many_messages_go(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    send(qtbot, pane, "second")
    turns = pane.turns

    click(pane, "turn:delete:1")
    qtbot.waitUntil(lambda: turns.confirm_box is not None and turns.confirm_box.isVisible(), timeout=WAIT_MS)
    assert "3 messages go" in turns.confirm_box.text()
    turns.confirm_box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: turns.confirm_box is None, timeout=WAIT_MS)
    assert len(stored(qtbot, modeldesk)) == 4

    click(pane, "turn:delete:1")
    qtbot.waitUntil(lambda: turns.confirm_box is not None and turns.confirm_box.isVisible(), timeout=WAIT_MS)
    box = turns.confirm_box
    next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole).click()
    qtbot.waitUntil(lambda: pane.transcript.turn_count == 1, timeout=WAIT_MS)
    assert [m.content for m in stored(qtbot, modeldesk)] == ["first"]
    assert "second" not in pane.transcript.toPlainText()

    click(pane, "turn:delete:0")
    qtbot.waitUntil(lambda: turns.confirm_box is not None and turns.confirm_box.isVisible(), timeout=WAIT_MS)
    assert "Nothing follows it." in turns.confirm_box.text()


def test_branch_opens_a_new_conversation_up_to_the_message(qtbot, modeldesk, pane):
    run(qtbot, modeldesk.settings.update(auto_titles="off"))  # named after the first message, not by the model
    send(qtbot, pane, "first")
    send(qtbot, pane, "second")
    original = pane.current_conversation
    with qtbot.waitSignal(pane.conversation_opened, timeout=WAIT_MS) as opened:
        click(pane, "turn:branch:1")
    assert opened.args[0] != original.id
    assert pane.current_conversation.id == opened.args[0]
    assert pane.current_conversation.title == "first (branch)"
    assert [m.content.split()[0] for m in stored(qtbot, modeldesk)] == ["first", "word0"]
    assert pane.transcript.turn_count == 2 and pane.conversations.rowCount() == 2
    assert len(run(qtbot, modeldesk.store.messages(original.id))) == 4  # the original is untouched


def test_nothing_changes_while_a_reply_streams(qtbot, modeldesk, pane, fault_account):
    send(qtbot, pane, "first")
    assert pane.select_model(fault_account.id, "slow")
    pane.composer.setPlainText("go slowly")
    qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.transcript.turn_count == 4, timeout=30_000)  # the reply streams
    qtbot.waitUntil(lambda: "word3" in pane.transcript.plain_text_of_last_message(), timeout=30_000)
    for href in ("turn:delete:0", "turn:regenerate:1", "turn:edit:0", "turn:branch:0"):
        click(pane, href)
        assert pane.notice.text() == WHILE_STREAMING
    assert pane.turns.confirm_box is None and pane.turns.edit_box.isHidden()
    assert pane.streaming, pane.transcript.toPlainText()
    with qtbot.waitSignal(pane.reply_finished, timeout=WAIT_MS):
        pane.stop()
    assert len(stored(qtbot, modeldesk)) == 4


def test_the_links_are_reachable_by_keyboard(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    pane.transcript.setFocus()
    qtbot.waitUntil(pane.transcript.hasFocus, timeout=WAIT_MS)
    with qtbot.waitSignal(pane.transcript.turn_action_requested, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(pane.transcript, Qt.Key.Key_Tab)
        qtbot.keyClick(pane.transcript, Qt.Key.Key_Return)
    assert blocker.args == ["edit", 0]
    qtbot.waitUntil(lambda: not pane.turns.edit_box.isHidden(), timeout=WAIT_MS)


def test_a_transcript_out_of_date_is_shown_again_not_acted_on(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    conversation = pane.current_conversation
    run(qtbot, modeldesk.store.add_message(conversation.id, role="user", content="written elsewhere"))
    click(pane, "turn:delete:1")
    qtbot.waitUntil(lambda: pane.notice.text() == OUT_OF_DATE, timeout=WAIT_MS)
    assert pane.turns.confirm_box is None
    assert "written elsewhere" in pane.transcript.toPlainText() and pane.transcript.turn_count == 3


def test_an_edit_the_locked_store_refuses_stays_in_the_box(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    modeldesk.store.busy_timeout_s = 0.2
    click(pane, "turn:edit:0")
    box = pane.turns.edit_box
    qtbot.waitUntil(lambda: not box.isHidden(), timeout=WAIT_MS)
    box.editor.setPlainText("first, edited while locked")
    with sqlite_stores.write_lock_held(modeldesk.paths.database_file):
        qtbot.mouseClick(box.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not box.problem.isHidden(), timeout=WAIT_MS)
    assert LOCKED in box.problem.text() and "your edit is kept here" in box.problem.text()
    assert not box.isHidden() and box.editor.toPlainText() == "first, edited while locked"
    assert stored(qtbot, modeldesk)[0].content == "first"

    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:  # the lock is gone: it goes
        qtbot.mouseClick(box.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["complete"]
    assert stored(qtbot, modeldesk)[0].content == "first, edited while locked"
    assert box.isHidden()


def test_retry_after_a_regenerated_reply_failed_answers_the_same_question(qtbot, modeldesk, pane, fault_account):
    send(qtbot, pane, "first")
    send(qtbot, pane, "second")
    assert pane.select_model(fault_account.id, "fault-500")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        click(pane, "turn:regenerate:1")
    assert blocker.args == ["failed"]
    assert "Retry" in pane.transcript.toPlainText()
    assert pane.select_model(fault_account.id, "ok")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        pane.transcript.retry_requested.emit()
    assert blocker.args == ["complete"]
    # The failed version went; the new answer is the reply's second version, not a turn after "second".
    messages = stored(qtbot, modeldesk)
    assert [(m.role, m.version, m.versions, m.status) for m in messages] == [
        ("user", 1, 1, MessageStatus.COMPLETE),
        ("assistant", 2, 2, MessageStatus.COMPLETE),
    ]


def test_a_locked_store_refusing_a_regenerate_or_a_delete_is_said_and_nothing_changes(qtbot, modeldesk, pane):
    send(qtbot, pane, "first")
    send(qtbot, pane, "second")
    before = [m.id for m in stored(qtbot, modeldesk)]
    modeldesk.store.busy_timeout_s = 0.2
    with sqlite_stores.write_lock_held(modeldesk.paths.database_file):
        click(pane, "turn:regenerate:1")
        qtbot.waitUntil(lambda: LOCKED in pane.transcript.toPlainText(), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not pane.streaming, timeout=WAIT_MS)
        click(pane, "turn:delete:1")
        qtbot.waitUntil(lambda: pane.turns.confirm_box is not None, timeout=WAIT_MS)
        box = pane.turns.confirm_box
        next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole).click()
        qtbot.waitUntil(lambda: pane.transcript.toPlainText().count(LOCKED) == 2, timeout=WAIT_MS)
    assert [m.id for m in stored(qtbot, modeldesk)] == before  # the branch shown and every message stay
    assert "then try again" in pane.transcript.toPlainText()


def test_code_blocks_are_highlighted_for_the_new_theme_once_it_changes(qtbot, modeldesk, pane):
    store = modeldesk.store
    conversation = run(qtbot, store.create_conversation(title="Code"))
    run(qtbot, store.add_message(conversation.id, role="user", content="Show me"))
    run(qtbot, store.add_message(conversation.id, role="assistant", content="```python\nprint('hi')\n```"))
    run(qtbot, pane.open_conversation(conversation))

    def code_html() -> str:
        """The highlighting of `print` (its span's style): recolouring does not touch it."""
        html = pane.transcript.toHtml()
        return html[html.rindex("<span", 0, html.index("print")) : html.index("print")]

    light = code_html()
    try:
        run(qtbot, modeldesk.theme_menu.set_theme("dark"))
        qtbot.waitUntil(lambda: code_html() != light, timeout=WAIT_MS)
        assert pane.transcript.toPlainText().count("print('hi')") == 1
    finally:
        run(qtbot, modeldesk.theme_menu.set_theme("system"))
