"""A read-only table model over a list of plain rows, the base of the panes' tables.

A subclass names its columns and says what a row shows in each (`_display`), and optionally the
value to sort by (`_raw` under `SORT_ROLE`), a tooltip and any other role; the base answers Qt's
questions about shape, headers, flags and alignment; what it shows and its tooltips lose
bidirectional controls (they come from servers and files). How rows change (a reset, or in place) stays
with the subclass, which calls `_reset_rows` or `_row_changed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from desktop_app.domain.text import without_bidi_controls

RowT = TypeVar("RowT")

_Index = QModelIndex | QPersistentModelIndex
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class RowsTableModel(QAbstractTableModel, Generic[RowT]):
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    NUMERIC: ClassVar[frozenset[int]] = frozenset()  # right-aligned, header included
    SORT_ROLE: ClassVar[int | None] = None  # the role that answers `_raw`, if the table sorts

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[RowT] = []

    # --- what a subclass says --------------------------------------------------------------------

    def _display(self, row: RowT, column: int) -> str:
        raise NotImplementedError

    def _raw(self, row: RowT, column: int) -> str | int | float:
        raise NotImplementedError

    def _tooltip(self, row: RowT, column: int) -> str | None:
        return None

    def _role_data(self, row: RowT, column: int, role: int) -> Any:
        """A role the base does not answer (an id, a colour, an icon); None when there is none."""
        return None

    # --- changing --------------------------------------------------------------------------------

    def _reset_rows(self, rows: Iterable[RowT]) -> None:
        """Show `rows` from scratch: views drop their selection."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def _row_changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    # --- reading ---------------------------------------------------------------------------------

    def rows(self) -> list[RowT]:
        return list(self._rows)

    def row_at(self, row: int) -> RowT | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.checkIndex(index, QAbstractTableModel.CheckIndexOption.IndexIsValid):
            return None
        row, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return without_bidi_controls(self._display(row, column))
        if role == self.SORT_ROLE:
            return self._raw(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self.NUMERIC:
            return _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            tooltip = self._tooltip(row, column)
            return None if tooltip is None else without_bidi_controls(tooltip)
        return self._role_data(row, column, role)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section in self.NUMERIC:
            return _RIGHT
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
