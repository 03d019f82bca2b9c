"""The "View as code" action on a reply: reached from the transcript by keyboard, a dialog with one tab per
snippet, Copy puts the tab shown on the clipboard; also for a reply read back from the store."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from desktop_app.services.paths import AppPaths
from desktop_app.ui.chat.request_code import RequestCodeDialog
from tests.ui.conftest import WAIT_MS, run
from tests.unit import sqlite_stores


def _send(qtbot, app, text: str) -> None:
    pane = app.chat_pane
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["complete"]


def _open_by_keyboard(qtbot, app) -> RequestCodeDialog:
    """Tab to the last "View as code" link of the transcript and press Enter."""
    transcript = app.chat_pane.transcript
    transcript.setFocus()
    qtbot.waitUntil(transcript.hasFocus, timeout=WAIT_MS)
    links = transcript.toPlainText().count("View as code")
    reached = 0
    for _ in range(links * 8):  # each message's header has its own links (Edit, Delete...) before it
        qtbot.keyClick(transcript, Qt.Key.Key_Tab)
        reached += transcript.textCursor().charFormat().anchorHref().startswith("request:")
        if reached == links:
            break
    assert reached == links
    qtbot.keyClick(transcript, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: app.chat_pane.findChild(RequestCodeDialog) is not None, timeout=WAIT_MS)
    dialog = app.chat_pane.findChild(RequestCodeDialog)
    qtbot.waitExposed(dialog)
    return dialog


def test_a_reply_offers_its_request_as_code_with_copy(qtbot, modeldesk, fault_account):
    assert modeldesk.chat_pane.select_model(fault_account.id, "ok")
    _send(qtbot, modeldesk, "Hello 'there'")
    assert "View as code" in modeldesk.chat_pane.transcript.toPlainText()

    dialog = _open_by_keyboard(qtbot, modeldesk)
    assert dialog.tab_titles() == ["LiteLLM", "OpenAI SDK", "curl"]
    assert "set OPENAI_COMPATIBLE_API_KEY first" in dialog.note.text()
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        text = dialog.current_text()
        assert "sk-test" not in text and "OPENAI_COMPATIBLE_API_KEY" in text
        # The user's message, quoted for Python or for the shell.
        assert "\"Hello 'there'\"" in text if index < 2 else "Hello '\\''there'\\''" in text
        with qtbot.waitSignal(dialog.copied, timeout=WAIT_MS):
            qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
        assert QGuiApplication.clipboard().text() == text
        assert dialog.copy_button.text() == "Copied"
    assert dialog.current_text().startswith("curl ")
    dialog.reject()
    qtbot.waitUntil(lambda: modeldesk.chat_pane.findChild(RequestCodeDialog) is None, timeout=WAIT_MS)


def test_a_stored_reply_offers_the_request_it_was_sent_with(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    _send(qtbot, modeldesk, "First")
    conversation = pane.current_conversation
    # Reopened from the store: the link is there again and shows the request as sent.
    run(qtbot, pane.open_conversation(conversation))
    assert pane.transcript.toPlainText().count("View as code") == 1

    dialog = _open_by_keyboard(qtbot, modeldesk)
    assert '{"role": "user", "content": "First"}' in dialog.current_text()
    assert 'model="openai/ok"' in dialog.current_text()


def test_a_request_whose_messages_left_the_history_says_it_cannot_be_shown_in_full(qtbot, modeldesk, fault_account):
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    _send(qtbot, modeldesk, "First")
    _send(qtbot, modeldesk, "Second")
    conversation = pane.current_conversation
    first = run(qtbot, modeldesk.chat.store.messages(conversation.id))[0]
    # The first question leaves the file behind the store's back (a damaged page lost in a recovery).
    with sqlite_stores.raw(AppPaths.from_environment().database_file) as conn:
        conn.execute("DELETE FROM messages WHERE id = ?", (first.id,))
    conn.close()
    run(qtbot, pane.open_conversation(conversation))

    dialog = _open_by_keyboard(qtbot, modeldesk)
    assert dialog.note.text().startswith(
        "This request can no longer be shown in full: 3 of its messages were deleted from the history or"
        " changed since. The code below leaves them out."
    )
    assert "First" not in dialog.current_text() and '"Second"' not in dialog.current_text()
    dialog.reject()
    qtbot.waitUntil(lambda: modeldesk.chat_pane.findChild(RequestCodeDialog) is None, timeout=WAIT_MS)
