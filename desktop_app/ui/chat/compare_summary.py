"""The summary under a comparison: each column's figures for the last turn, the best of each marked."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from desktop_app.domain.chat import ReplyMetrics

_Index = QModelIndex | QPersistentModelIndex
BEST_MARK = " ★"


@dataclass(frozen=True, slots=True)
class _Figure:
    title: str
    lower_is_better: bool | None  # None: nothing to mark (a finish reason)


FIGURES = (
    _Figure("TTFT", True),
    _Figure("Tokens/s", False),
    _Figure("Prompt", None),
    _Figure("Completion", None),
    _Figure("Cost", True),
    _Figure("Total time", True),
    _Figure("Finish", None),
)


@dataclass(slots=True)
class ColumnResult:
    """What one column's reply ended with; `finish` is the finish reason, or what cut it short."""

    metrics: ReplyMetrics | None = None
    finish: str = ""


def _values(metrics: ReplyMetrics | None) -> tuple[float | None, ...]:
    if metrics is None:
        return (None,) * 6
    return (
        metrics.ttft_s,
        metrics.tokens_per_s,
        metrics.prompt_tokens,
        metrics.completion_tokens,
        metrics.cost_usd,
        metrics.latency_s,
    )


def _text(figure: int, value: float | None) -> str:
    if value is None:
        return "—"
    if figure == 0:
        return f"{value * 1000:.0f} ms"
    if figure == 1:
        return f"{value:.1f}"
    if figure == 4:
        return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"
    if figure == 5:
        return f"{value:.2f} s"
    return f"{int(value)}"


class CompareSummaryModel(QAbstractTableModel):
    """Rows: the columns (by their labels); columns: the figures. `best(figure)` is the winning row."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._labels: list[str] = []
        self._results: list[ColumnResult] = []
        self._best: list[int | None] = [None] * len(FIGURES)  # `best` of each figure, kept with the results

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._labels)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(FIGURES)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return FIGURES[section].title if 0 <= section < len(FIGURES) else None
        return self._labels[section] if 0 <= section < len(self._labels) else None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._results):
            return None
        row, figure = index.row(), index.column()
        best = figure < 6 and self._best[figure] == row
        if role == Qt.ItemDataRole.DisplayRole:
            result = self._results[row]
            if figure == 6:
                return result.finish or "—"
            return _text(figure, _values(result.metrics)[figure]) + (BEST_MARK if best else "")
        if role == Qt.ItemDataRole.FontRole and best:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and figure < 6:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def best(self, figure: int) -> int | None:
        """The row with the best value of `figure`, or None (no rule, fewer than two values, or a tie)."""
        rule = FIGURES[figure].lower_is_better
        if rule is None:
            return None
        known = [(v, row) for row, r in enumerate(self._results) if (v := _values(r.metrics)[figure]) is not None]
        if len(known) < 2:
            return None
        ordered = sorted(known, reverse=not rule)
        if ordered[0][0] == ordered[1][0]:
            return None
        return ordered[0][1]

    def set_columns(self, labels: list[str]) -> None:
        self.beginResetModel()
        self._labels = list(labels)
        self._results = [ColumnResult() for _ in labels]
        self._best = [self.best(f) for f in range(len(FIGURES))]
        self.endResetModel()

    def set_labels(self, labels: list[str]) -> None:
        self._labels = list(labels)
        if labels:
            self.headerDataChanged.emit(Qt.Orientation.Vertical, 0, len(labels) - 1)

    def set_result(self, row: int, result: ColumnResult) -> None:
        # Unchanged, nothing is announced: the view sizes its columns to their contents, which asks
        # every cell again, and each column starting a turn says "nothing yet" once more.
        if not 0 <= row < len(self._results) or self._results[row] == result:
            return
        self._results[row] = result
        self._best = [self.best(f) for f in range(len(FIGURES))]
        # The best marks of every row may change.
        self.dataChanged.emit(self.index(0, 0), self.index(len(self._results) - 1, len(FIGURES) - 1))

    def result(self, row: int) -> ColumnResult:
        return self._results[row]


class CompareSummary(QTableView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = CompareSummaryModel(self)
        self.setModel(self.summary)
        self.setObjectName("compareSummary")
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.summary.modelReset.connect(self._fit_height)
        self._fit_height()

    def _fit_height(self) -> None:
        """Every row shows (at most four): the table never scrolls."""
        header = self.horizontalHeader().sizeHint().height()
        rows = self.verticalHeader().defaultSectionSize() * self.summary.rowCount()
        self.setFixedHeight(header + rows + 2 * self.frameWidth())
