"""The chat pane's left column: the conversations (a view over the pane's model) and their buttons."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QListView, QMenu, QPushButton, QVBoxLayout, QWidget

from desktop_app.ui.chat.models import ID_ROLE
from desktop_app.ui.chat.search_panel import SearchPanel


class ConversationsBox(QWidget):
    """New chat and the search on top, the list (or the search results), then Rename and Delete;
    the pane connects the buttons and the list's context menu (pin, tags, and `export_action`).
    Several conversations can be selected (Ctrl, Shift) and exported together."""

    export_requested = Signal(list)  # the ids of the conversations selected

    def __init__(self, *, model: QAbstractItemModel, search: SearchPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = search
        self.view = QListView()
        self.view.setModel(model)
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        # A long title or many tags is cut with "…" (the tooltip has it all), not scrolled sideways.
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setUniformItemSizes(True)  # one line each: a page read costs its rows, not a pass over all
        self.export_action = QAction("Export…", self)
        self.export_action.triggered.connect(self._on_export_triggered)
        self.context_menu: QMenu | None = None  # the list's menu while it is open
        self.new_button = QPushButton("New chat")
        self.rename_button = QPushButton("Rename")
        self.delete_button = QPushButton("Delete")
        left = QVBoxLayout(self)
        left.addWidget(self.new_button)
        left.addWidget(search, 1)
        left.addWidget(self.view, 1)
        row = QHBoxLayout()
        row.addWidget(self.rename_button)
        row.addWidget(self.delete_button)
        left.addLayout(row)
        self._on_search_active_changed(False)
        search.active_changed.connect(self._on_search_active_changed)

    def selected_ids(self) -> list[int]:
        """The conversations selected, top to bottom (the current one when none is)."""
        rows = sorted(self.view.selectionModel().selectedRows(), key=lambda index: index.row())
        if not rows and self.view.currentIndex().isValid():
            rows = [self.view.currentIndex()]
        return [index.data(ID_ROLE) for index in rows]

    def _on_export_triggered(self) -> None:
        if ids := self.selected_ids():
            self.export_requested.emit(ids)

    def _on_search_active_changed(self, active: bool) -> None:
        """The results take the list's place while a search is in use."""
        self.view.setVisible(not active)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.setStretchFactor(self.search, 1 if active else 0)
