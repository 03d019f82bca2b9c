"""Questions the user answers before something is removed for good."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def ask_to_confirm(
    parent: QWidget,
    *,
    title: str,
    text: str,
    informative: str,
    action: str,
    on_answer: Callable[[bool], None],
    object_name: str = "",
) -> QMessageBox:
    """Ask with `action` ("Delete", "Remove") or Cancel, Cancel the default; `on_answer(confirmed)`
    once it closes. Opened with open(), so no event loop of its own runs inside a coroutine."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    if object_name:
        box.setObjectName(object_name)
    box.setInformativeText(informative)
    confirm = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.finished.connect(lambda _result: on_answer(box.clickedButton() is confirm))
    box.open()
    return box
