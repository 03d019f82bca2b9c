"""The summary under a comparison: each column's figures for the last turn, the best of each marked."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from desktop_app.domain.chat import ReplyMetrics

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


class CompareSummaryModel(QStandardItemModel):
    """Rows: the columns (by their labels); columns: the figures. `best(figure)` is the winning row.

    The cells are kept as items, in Qt: the view reads them (to paint, and to size its columns to
    their contents) without calling into Python, which, while other columns stream, would wait for
    the interpreter lock at every cell and role.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(FIGURES), parent)
        self.setHorizontalHeaderLabels([f.title for f in FIGURES])
        self._labels: list[str] = []
        self._results: list[ColumnResult] = []

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
        self.blockSignals(True)  # one reset, not the rows' own signals inside it
        self._labels = list(labels)
        self._results = [ColumnResult() for _ in labels]
        self.setRowCount(len(labels))
        self._fill()
        self._set_vertical_labels()
        self.blockSignals(False)
        self.endResetModel()

    def set_labels(self, labels: list[str]) -> None:
        self._labels = list(labels)
        self._set_vertical_labels()

    def set_result(self, row: int, result: ColumnResult) -> None:
        # Unchanged, nothing is announced: the view sizes its columns to their contents on each change.
        if not 0 <= row < len(self._results) or self._results[row] == result:
            return
        self._results[row] = result
        # The best marks of every row may change: every cell is set again, announced once.
        self.blockSignals(True)
        self._fill()
        self.blockSignals(False)
        self.dataChanged.emit(self.index(0, 0), self.index(len(self._results) - 1, len(FIGURES) - 1))

    def result(self, row: int) -> ColumnResult:
        return self._results[row]

    def _set_vertical_labels(self) -> None:
        for row, label in enumerate(self._labels[: self.rowCount()]):
            self.setVerticalHeaderItem(row, QStandardItem(label))

    def _fill(self) -> None:
        best = [self.best(f) for f in range(6)]
        bold = QFont()
        bold.setBold(True)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, result in enumerate(self._results):
            values = _values(result.metrics)
            for figure in range(len(FIGURES)):
                item = QStandardItem()
                item.setEditable(False)
                if figure == 6:
                    item.setText(result.finish or "—")
                else:
                    marked = best[figure] == row
                    item.setText(_text(figure, values[figure]) + (BEST_MARK if marked else ""))
                    item.setTextAlignment(right)
                    if marked:
                        item.setFont(bold)
                self.setItem(row, figure, item)


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
