"""The llama.cpp pane's "Servers" box: the servers ModelDesk knows, and the buttons that act on them.

An address field with Connect / Refresh / Remove / Use in chat over the list of servers (the pane's
`ServersModel`), or, while the list is empty, an empty state that points at the form below. Remove
is for a selected server connected by address, Use in chat for any selected server. The pane fills
the model, says in `status` what happens and does the work; this module only builds the box and
keeps its buttons in step with the list and the selection.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.llamacpp.models import ServerRow, ServersModel, ServerSource
from desktop_app.ui.llamacpp.widgets import EmptyState, status_label, table

SERVERS_EMPTY = (
    "No llama.cpp servers yet. Type the address of a running llama-server above and "
    "press Connect, or start one on a GGUF file."
)
URL_PLACEHOLDER = "http://127.0.0.1:8080"
NO_URL = f"Type the address of a llama-server first, e.g. {URL_PLACEHOLDER}."


class ServersBox(QGroupBox):
    """The address field, the list of servers (or its empty state) and the buttons above it."""

    def __init__(self, *, model: ServersModel, parent: QWidget | None = None) -> None:
        super().__init__("Servers", parent, objectName="serversBox")
        self._model = model
        self.url_edit = QLineEdit(objectName="serverUrl", placeholderText=URL_PLACEHOLDER, clearButtonEnabled=True)
        self.url_edit.setAccessibleName("Server address")
        self.connect_button = QPushButton(
            "Connect", objectName="connectServer", toolTip="Add the llama-server at this address to the list"
        )
        self.refresh_button = QPushButton(
            "Refresh", objectName="refreshServers", toolTip="Ask every server in the list how it is doing"
        )
        self.remove_button = QPushButton(
            "Remove",
            objectName="removeServer",
            enabled=False,
            toolTip="Take the selected server off the list (it keeps running)",
        )
        self.use_in_chat_button = QPushButton(
            "Use in chat",
            objectName="useInChat",
            enabled=False,
            toolTip="Add the selected server as an account for the chat",
        )
        connect_row = QHBoxLayout()
        connect_row.addWidget(self.url_edit, 1)
        for button in (self.connect_button, self.refresh_button, self.remove_button, self.use_in_chat_button):
            connect_row.addWidget(button)
        self.view = table("serverList")
        self.view.setModel(model)
        # Addresses, sizes and slots as wide as they need; the model name takes the rest, and a long
        # status (an error sentence) is cut, with the whole of it in the tooltip.
        header = self.view.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ServersModel.MODEL, QHeaderView.ResizeMode.Stretch)
        header.setMaximumSectionSize(self.fontMetrics().averageCharWidth() * 36)
        self.start_here_button = QPushButton(
            "Start a server", objectName="startHere", toolTip="Go to the form that starts llama-server on a GGUF file"
        )
        self.empty = EmptyState(SERVERS_EMPTY, self.start_here_button, object_name="serversEmpty")
        self._stack = QStackedWidget()
        self._stack.addWidget(self.view)
        self._stack.addWidget(self.empty)
        self.status = status_label("serversStatus")
        layout = QVBoxLayout(self)
        layout.addLayout(connect_row)
        layout.addWidget(self._stack, 1)
        layout.addWidget(self.status)
        # Connected before the pane's own handlers, so the buttons are in step when those run.
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        model.rowsInserted.connect(self._on_rows_changed)
        model.rowsRemoved.connect(self._on_rows_changed)
        self.update_state()

    @property
    def showing_empty_state(self) -> bool:
        return self._stack.currentWidget() is self.empty

    def selected_url(self) -> str:
        row = self.selected_row()
        return row.url if row is not None else ""

    def selected_row(self) -> ServerRow | None:
        rows = self.view.selectionModel().selectedRows()
        return self._model.row_at(rows[0].row()) if rows else None

    def update_state(self) -> None:
        """The list or the empty state; Remove for a connected server, Use in chat for any."""
        empty = self._model.rowCount() == 0
        self._stack.setCurrentWidget(self.empty if empty else self.view)
        row = self.selected_row()
        self.remove_button.setEnabled(row is not None and row.source is ServerSource.CONNECTED)
        self.use_in_chat_button.setEnabled(bool(self.selected_url()))

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.update_state()

    def _on_rows_changed(self, *_args: object) -> None:
        self.update_state()
