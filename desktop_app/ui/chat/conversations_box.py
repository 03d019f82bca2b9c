"""The chat pane's left column: the conversations (a view over the pane's model) and their buttons."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QPoint, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QListView, QMenu, QPushButton, QVBoxLayout, QWidget

from desktop_app.ui.chat.models import ID_ROLE


class ConversationsBox(QWidget):
    """New chat on top, the list, then Rename and Delete; the pane connects the buttons. Several
    conversations can be selected (Ctrl, Shift); the right-click menu exports them."""

    export_requested = Signal(list)  # the ids of the conversations selected

    def __init__(self, *, model: QAbstractItemModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = QListView()
        self.view.setModel(model)
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu)
        self.context_menu = QMenu(self)
        self.export_action = self.context_menu.addAction("Export…")
        self.export_action.triggered.connect(self._on_export_triggered)
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

    def selected_ids(self) -> list[int]:
        """The conversations selected, top to bottom (the current one when none is)."""
        rows = sorted(self.view.selectionModel().selectedRows(), key=lambda index: index.row())
        if not rows and self.view.currentIndex().isValid():
            rows = [self.view.currentIndex()]
        return [index.data(ID_ROLE) for index in rows]

    def _on_view_context_menu(self, pos: QPoint) -> None:
        if self.view.indexAt(pos).isValid():
            self.context_menu.popup(self.view.viewport().mapToGlobal(pos))

    def _on_export_triggered(self) -> None:
        if ids := self.selected_ids():
            self.export_requested.emit(ids)
