"""The chat pane's left column: the conversations (a view over the pane's model) and their buttons."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel
from PySide6.QtWidgets import QHBoxLayout, QListView, QPushButton, QVBoxLayout, QWidget


class ConversationsBox(QWidget):
    """New chat on top, the list, then Rename and Delete; the pane connects the buttons."""

    def __init__(self, *, model: QAbstractItemModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = QListView()
        self.view.setModel(model)
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.new_button = QPushButton("New chat")
        self.rename_button = QPushButton("Rename")
        self.delete_button = QPushButton("Delete")
        left = QVBoxLayout(self)
        left.addWidget(self.new_button)
        left.addWidget(self.view, 1)
        row = QHBoxLayout()
        row.addWidget(self.rename_button)
        row.addWidget(self.delete_button)
        left.addLayout(row)
