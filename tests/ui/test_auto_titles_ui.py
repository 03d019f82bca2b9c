"""Automatic titles from the window: the list shows the model's title after the first reply, and
the list's menu sets which models may name conversations."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ui.conftest import WAIT_MS, run


def test_the_first_reply_is_followed_by_the_models_title_in_the_list(qtbot, modeldesk, fault_account) -> None:
    pane = modeldesk.chat_pane
    assert pane.select_model(fault_account.id, "ok")
    run(qtbot, pane.new_conversation())
    pane.composer.setPlainText("Tell me about penguins")
    with qtbot.waitSignal(pane.reply_finished, timeout=30_000):
        qtbot.mouseClick(pane.send_button, Qt.MouseButton.LeftButton)
    conversation_id = pane.current_conversation.id
    row = pane.conversations.row_of(conversation_id)
    qtbot.waitUntil(lambda: pane.conversations.index(row).data().startswith("word0 word1"), timeout=WAIT_MS)
    stored = run(qtbot, modeldesk.store.get_conversation(conversation_id))
    assert stored.title == pane.conversations.conversation_at(row).title == pane.current_conversation.title


def test_the_lists_menu_sets_which_models_name_conversations(qtbot, modeldesk) -> None:
    pane = modeldesk.chat_pane
    run(qtbot, pane.new_conversation())
    menu = pane.conversation_menu(0)
    [submenu] = [a.menu() for a in menu.actions() if a.menu() is not None]
    choices = submenu.actions()
    assert [a.isChecked() for a in choices] == [False, True, False]  # local models, by default
    choices[2].trigger()
    qtbot.waitUntil(lambda: modeldesk.settings.current.auto_titles == "all", timeout=WAIT_MS)
    menu = pane.conversation_menu(0)
    [submenu] = [a.menu() for a in menu.actions() if a.menu() is not None]
    assert [a.isChecked() for a in submenu.actions()] == [False, False, True]
