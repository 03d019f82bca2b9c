"""File > Export conversations / Import conversations and the list's Export…, driven through the
real file dialogs on the real app: the file is written or read, the list and the status bar say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QFileDialog

from tests.ui.conftest import WAIT_MS, run


def the_dialog(qtbot, window) -> QFileDialog:
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(QFileDialog)), timeout=WAIT_MS)
    [dialog] = [d for d in window.findChildren(QFileDialog) if d.isVisible()]
    return dialog


def choose(qtbot, window, path: Path, name_filter: str | None = None) -> None:
    dialog = the_dialog(qtbot, window)
    if name_filter is not None:
        [wanted] = [f for f in dialog.nameFilters() if f.startswith(name_filter)]
        dialog.selectNameFilter(wanted)
        dialog.filterSelected.emit(wanted)  # as a user's pick in the combo box does
    dialog.selectFile(str(path))
    dialog.accept()


def status(window) -> str:
    return window.statusBar().currentMessage()


def conversations(qtbot, modeldesk, *titles: str) -> list[int]:
    ids = []
    for title in titles:
        conversation = run(qtbot, modeldesk.store.create_conversation(title=title, model="m"))
        run(qtbot, modeldesk.store.add_message(conversation.id, role="user", content=f"About {title}"))
        run(qtbot, modeldesk.store.add_message(conversation.id, role="assistant", content=f"{title} it is."))
        ids.append(conversation.id)
    run(qtbot, modeldesk.chat_pane.load_conversations())
    return ids


def test_all_conversations_go_to_markdown_when_the_dialog_says_markdown(qtbot, modeldesk, tmp_path: Path) -> None:
    window = modeldesk.window
    conversations(qtbot, modeldesk, "Apples", "Pears")

    modeldesk.library_menu.export_all_action.trigger()
    choose(qtbot, window, tmp_path / "library", "Markdown")

    target = tmp_path / "library.md"
    qtbot.waitUntil(lambda: status(window) == f"Exported 2 conversations to {target}.", timeout=WAIT_MS)
    text = target.read_text("utf-8")
    assert text.startswith("# Pears\n\n- Model: m\n\n## User\n\nAbout Pears\n\n## Assistant\n\nPears it is.\n")
    assert "\n---\n\n# Apples\n" in text


def test_the_open_conversation_exports_under_its_title(qtbot, modeldesk, tmp_path: Path) -> None:
    window = modeldesk.window
    pane = modeldesk.chat_pane
    conversations(qtbot, modeldesk, "Apples", "Pears: a study")
    qtbot.waitUntil(lambda: pane.current_conversation is not None, timeout=WAIT_MS)

    modeldesk.library_menu.export_current_action.trigger()
    dialog = the_dialog(qtbot, window)
    assert dialog.selectedFiles()[0].endswith("/Pears a study.json")
    dialog.setDirectory(str(tmp_path))
    dialog.accept()

    target = tmp_path / "Pears a study.json"
    qtbot.waitUntil(lambda: status(window) == f"Exported 1 conversation to {target}.", timeout=WAIT_MS)
    [exported] = json.loads(target.read_text("utf-8"))["conversations"]
    assert exported["title"] == "Pears: a study" and len(exported["messages"]) == 2


# The offscreen platform says these when a popup menu opens; they are not our code.
@pytest.mark.qt_log_ignore(r"This plugin does not support (raise\(\)|grabbing the keyboard)")
def test_the_lists_export_takes_the_conversations_selected(qtbot, modeldesk, tmp_path: Path) -> None:
    window = modeldesk.window
    box = modeldesk.chat_pane.conversations_box
    conversations(qtbot, modeldesk, "One", "Two", "Three")
    model = box.view.model()
    selection = box.view.selectionModel()
    selection.select(model.index(0, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect)
    selection.select(model.index(2, 0), QItemSelectionModel.SelectionFlag.Select)
    box.view.customContextMenuRequested.emit(box.view.visualRect(model.index(2, 0)).center())
    qtbot.waitUntil(lambda: box.context_menu is not None and box.context_menu.isVisible(), timeout=WAIT_MS)

    box.export_action.trigger()
    box.context_menu.hide()
    choose(qtbot, window, tmp_path / "picked.json")

    target = tmp_path / "picked.json"
    qtbot.waitUntil(lambda: status(window) == f"Exported 2 conversations to {target}.", timeout=WAIT_MS)
    titles = [c["title"] for c in json.loads(target.read_text("utf-8"))["conversations"]]
    assert titles == ["Three", "One"]


def test_an_import_adds_the_conversations_to_the_list_and_says_how_many(qtbot, modeldesk, tmp_path: Path) -> None:
    window = modeldesk.window
    pane = modeldesk.chat_pane
    conversations(qtbot, modeldesk, "Already here")
    path = tmp_path / "chats.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": "First import"}, {"role": "assistant", "content": "Yes."}]},
        {"messages": [{"role": "user", "content": "Second import"}, {"role": "assistant", "content": "Also."}]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")

    modeldesk.library_menu.import_action.trigger()
    choose(qtbot, window, path)

    qtbot.waitUntil(
        lambda: status(window) == "Imported 2 conversations (4 messages) from chats.jsonl.", timeout=WAIT_MS
    )
    titles = [pane.conversations.conversation_at(row).title for row in range(pane.conversations.rowCount())]
    assert titles == ["First import", "Second import", "Already here"]
    qtbot.waitUntil(lambda: (c := pane.current_conversation) is not None and c.title == "First import", timeout=WAIT_MS)


def test_a_file_cut_short_is_refused_in_the_status_bar_and_nothing_is_imported(
    qtbot, modeldesk, tmp_path: Path
) -> None:
    window = modeldesk.window
    pane = modeldesk.chat_pane
    conversations(qtbot, modeldesk, "Already here")
    path = tmp_path / "cut.json"
    path.write_text('{"format": "modeldesk-conversations", "version": 1, "conversations": [{"title": "Half', "utf-8")

    modeldesk.library_menu.import_action.trigger()
    choose(qtbot, window, path)

    qtbot.waitUntil(
        lambda: status(window) == "cut.json ends before its JSON does: the file is cut short. Nothing was imported.",
        timeout=WAIT_MS,
    )
    assert pane.conversations.rowCount() == 1
    assert len(run(qtbot, modeldesk.store.list_conversations())) == 1
