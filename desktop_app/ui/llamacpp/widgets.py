"""Small widgets the parts of the llama.cpp pane share: tables, status lines, empty states."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
)


class EmptyState(QFrame):
    """A sentence and the button for the next step, on the same framed panel as the list it stands for."""

    def __init__(self, text: str, button: QPushButton, *, object_name: str, more: tuple[QPushButton, ...] = ()) -> None:
        super().__init__(
            objectName=object_name,
            frameShape=QFrame.Shape.StyledPanel,
            autoFillBackground=True,
            backgroundRole=QPalette.ColorRole.Base,
        )
        self.label = QLabel(
            text,
            wordWrap=True,
            alignment=Qt.AlignmentFlag.AlignCenter,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.button = button
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addStretch(1)
        layout.addWidget(self.label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for each in (button, *more):
            buttons.addWidget(each)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(1)


def table(object_name: str) -> QTableView:
    view = QTableView(objectName=object_name)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    view.verticalHeader().hide()
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setHighlightSections(False)
    return view


def status_label(object_name: str) -> QLabel:
    label = QLabel(objectName=object_name, wordWrap=True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label
