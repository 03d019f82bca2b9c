"""The llama.cpp pane's two lists as Qt models: the servers it knows, and a router's models.

Both are tables over plain domain data the pane hands them; rows are updated in place (one
`dataChanged` per changed row) so selections survive every refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from desktop_app.domain.llamacpp import (
    ManagedState,
    ManagedStatus,
    RouterModel,
    RouterModelStatus,
    ServerInfo,
    describe_exit,
)
from desktop_app.domain.urls import same_server
from desktop_app.ui.common.table_model import RowsTableModel
from desktop_app.ui.theme import colours

UrlRole = Qt.ItemDataRole.UserRole  # ServersModel: the server's root URL
ModelIdRole = Qt.ItemDataRole.UserRole  # RouterModelsModel: the model id
StatusRole = Qt.ItemDataRole.UserRole + 1  # RouterModelsModel: the RouterModelStatus value

UNKNOWN = "—"


class ServerSource(StrEnum):
    CONNECTED = "connected"  # somebody else's server, added by URL
    MANAGED = "managed"  # started by this pane


@dataclass(frozen=True, slots=True)
class ServerRow:
    url: str
    source: ServerSource
    info: ServerInfo | None = None  # None: not inspected yet, or unreachable
    error: str = ""  # the last inspection's one-sentence failure
    managed: ManagedState | None = None
    title: str = ""  # managed: the GGUF file's or the folder's name

    @property
    def router_mode(self) -> bool:
        return self.info is not None and self.info.router_mode


def host_port(url: str) -> str:
    return urlsplit(url).netloc or url


def status_text(row: ServerRow) -> str:
    """One short phrase for the Status column."""
    managed = row.managed
    if managed is not None and managed.status is ManagedStatus.CRASHED:
        return f"Crashed ({describe_exit(managed.exit_code)})"
    if managed is not None and managed.status is ManagedStatus.STARTING:
        return "Starting…"
    if managed is not None and managed.status is ManagedStatus.STOPPED:
        return "Stopped"
    if row.error:
        return row.error
    if row.info is None:
        return "Checking…"
    if row.info.loading:
        return "Loading model…"
    suffix = " (started here)" if row.source is ServerSource.MANAGED else ""
    return ("Router" if row.info.router_mode else "Ready") + suffix


def model_text(row: ServerRow) -> str:
    info = row.info
    if info is None or info.loading:
        return row.title or UNKNOWN
    if info.router_mode:
        count = len(info.models)
        loaded = ", ".join(m.id for m in info.loaded_models) or "none loaded"
        return f"{count} model{'s' if count != 1 else ''} ({loaded})"
    return info.model_alias or row.title or UNKNOWN


def slots_text(info: ServerInfo | None) -> str:
    if info is None or info.total_slots is None:
        return UNKNOWN
    if info.busy_slots is None:
        return f"{info.total_slots}"
    return f"{info.busy_slots} of {info.total_slots} busy"


class ServersModel(RowsTableModel[ServerRow]):
    """Servers connected by URL and the one this pane started, with what each last reported."""

    COLUMNS = ("Server", "Model", "Context", "Slots", "Status")
    SERVER, MODEL, CONTEXT, SLOTS, STATUS = range(5)
    NUMERIC = frozenset({CONTEXT, SLOTS})

    # --- changing --------------------------------------------------------------------------------

    def upsert(self, row: ServerRow) -> int:
        """Add `row`, or replace the row with the same URL; its row number."""
        index = self.row_of(row.url)
        if index < 0:
            index = len(self._rows)
            self.beginInsertRows(QModelIndex(), index, index)
            self._rows.append(row)
            self.endInsertRows()
            return index
        if self._rows[index] != row:
            self._rows[index] = row
            self._row_changed(index)
        return index

    def remove(self, url: str) -> None:
        index = self.row_of(url)
        if index >= 0:
            self.beginRemoveRows(QModelIndex(), index, index)
            del self._rows[index]
            self.endRemoveRows()

    # --- reading ---------------------------------------------------------------------------------

    def row_of(self, url: str) -> int:
        for number, row in enumerate(self._rows):
            if same_server(row.url, url):
                return number
        return -1

    def _role_data(self, row: ServerRow, column: int, role: int) -> Any:
        if role == UrlRole:
            return row.url
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            crashed = row.managed is not None and row.managed.status is ManagedStatus.CRASHED
            if crashed or row.error:
                return QColor(colours().error)
            if row.info is not None and row.info.healthy:
                return QColor(colours().ok)
        return None

    def _display(self, row: ServerRow, column: int) -> str:
        if column == self.SERVER:
            return host_port(row.url)
        if column == self.MODEL:
            return model_text(row)
        if column == self.CONTEXT:
            return f"{row.info.n_ctx:,}" if row.info is not None and row.info.n_ctx else UNKNOWN
        if column == self.SLOTS:
            return slots_text(row.info)
        return status_text(row)

    def _tooltip(self, row: ServerRow, column: int) -> str | None:
        if column == self.SERVER:
            build = f"\nBuild {row.info.build}" if row.info is not None and row.info.build else ""
            origin = "Started by ModelDesk" if row.source is ServerSource.MANAGED else "Connected by address"
            return f"{row.url}\n{origin}{build}"
        if column == self.MODEL and row.info is not None and row.info.model_path:
            return row.info.model_path
        if column == self.STATUS:
            if row.managed is not None and row.managed.message:
                return row.managed.message
            return row.error or None
        return None


_STATUS_TEXT = {
    RouterModelStatus.UNLOADED: "Not loaded",
    RouterModelStatus.LOADING: "Loading…",
    RouterModelStatus.LOADED: "Loaded",
    RouterModelStatus.SLEEPING: "Sleeping",
}


def router_status_text(model: RouterModel) -> str:
    if model.failed and model.status is RouterModelStatus.UNLOADED:
        return f"Failed to load ({describe_exit(model.exit_code)})"
    return _STATUS_TEXT[model.status]


class RouterModelsModel(RowsTableModel[RouterModel]):
    """The models a router-mode llama-server offers, with their load status."""

    COLUMNS = ("Model", "Status")  # the file is in the model's tooltip: ids are mostly file names
    MODEL, STATUS = range(2)

    def set_models(self, models: Sequence[RouterModel]) -> None:
        """Show `models`; the same ids in the same order update in place (selection is kept)."""
        models = list(models)
        if [m.id for m in models] != [m.id for m in self._rows]:
            self._reset_rows(models)
            return
        for number, (old, new) in enumerate(zip(self._rows, models, strict=True)):
            if old != new:
                self._rows[number] = new
                self._row_changed(number)

    def models(self) -> list[RouterModel]:
        return self.rows()

    def model_at(self, row: int) -> RouterModel | None:
        return self.row_at(row)

    def row_of(self, model_id: str) -> int:
        for number, model in enumerate(self._rows):
            if model.id == model_id:
                return number
        return -1

    def _display(self, model: RouterModel, column: int) -> str:
        return model.id if column == self.MODEL else router_status_text(model)

    def _tooltip(self, model: RouterModel, column: int) -> str | None:
        return model.path if column == self.MODEL and model.path else None

    def _role_data(self, model: RouterModel, column: int, role: int) -> Any:
        if role == ModelIdRole:
            return model.id
        if role == StatusRole:
            return model.status.value
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            if model.failed and model.status is RouterModelStatus.UNLOADED:
                return QColor(colours().error)
            if model.status is RouterModelStatus.LOADED:
                return QColor(colours().ok)
            if model.status is RouterModelStatus.LOADING:
                return QColor(colours().busy)
        return None
