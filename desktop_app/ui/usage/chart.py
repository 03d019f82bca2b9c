"""A stacked bar chart of tokens (or cost) per day, one colour per account, painted by hand.

QtCharts is not part of PySide6-Essentials, and a few dozen bars need nothing it offers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from PySide6.QtCore import QDate, QEvent, QLocale, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QHelpEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from desktop_app.domain.accounts import COLOURS, Account
from desktop_app.domain.usage import DailyUsage

FALLBACK_COLOURS = tuple(colour for colour in COLOURS if colour)
REMOVED_LABEL = "Removed account"
_PAD = 12
_SWATCH_GAP = 6
_LEGEND_GAP = 18
_LEGEND_LABEL_MAX = 180  # px; longer account names are elided


class ChartMetric(StrEnum):
    TOKENS = "tokens"
    COST = "cost"


@dataclass(frozen=True)
class Series:
    """One account in the chart: what the legend calls it and the colour of its bars."""

    account_id: str
    label: str
    colour: QColor


def account_series(accounts: Sequence[Account], extra_ids: Iterable[str] = ()) -> list[Series]:
    """A series per account, in the accounts' order, then one per other id (removed accounts).

    An account's own colour tag is used; the others take, in order, the palette colours no
    tagged account uses, so the assignment is stable whatever the filters show.
    """
    taken = {account.colour for account in accounts if account.colour}
    spare = [colour for colour in FALLBACK_COLOURS if colour not in taken] or list(FALLBACK_COLOURS)
    series: list[Series] = []
    next_spare = 0

    def fallback() -> QColor:
        nonlocal next_spare
        colour = QColor(spare[next_spare % len(spare)])
        next_spare += 1
        return colour

    known = set()
    for account in accounts:
        known.add(account.id)
        series.append(Series(account.id, account.label, QColor(account.colour) if account.colour else fallback()))
    for account_id in sorted(set(extra_ids) - known):
        series.append(Series(account_id, REMOVED_LABEL, fallback()))
    return series


def nice_ticks(maximum: float, count: int, *, integer: bool) -> list[float]:
    """0, step, 2·step... up to the first multiple at or above `maximum`; steps of 1, 2, 2.5 or 5 × 10ⁿ."""
    if maximum <= 0:
        return [0.0, 1.0] if integer else [0.0, 0.01]
    raw = maximum / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    multiples = (1, 2, 5, 10) if integer and magnitude < 10 else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in multiples if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, round(step))
    steps = math.ceil(maximum / step - 1e-9)
    return [i * step for i in range(steps + 1)]


def format_tokens(value: float) -> str:
    """12k, 1.5M: short enough for an axis."""
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= divisor:
            return f"{value / divisor:g}{suffix}"
    return f"{value:g}"


def format_cost(value: float, step: float) -> str:
    """$0.05: as many places as the axis step needs, at least two."""
    places = 2
    while places < 8 and abs(round(step, places) - step) > step * 1e-6:
        places += 1
    return f"${value:,.{places}f}"


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


class DailyChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dailyChart")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Usage per day")
        self._metric = ChartMetric.TOKENS
        self._days: list[date] = []
        self._series: list[Series] = []
        self._tokens: dict[str, list[float]] = {}
        self._cost: dict[str, list[float]] = {}
        self._empty_text = "No usage in this period."
        self._plot = QRectF()  # where the bars were last painted, for tooltips

    # --- public --------------------------------------------------------------------------------

    def set_data(
        self,
        rows: Iterable[DailyUsage],
        series: Sequence[Series],
        *,
        days: int,
        end: date | None = None,
        empty_text: str = "No usage in this period.",
    ) -> None:
        """Show the last `days` days up to `end` (today); rows outside them are left out.

        Each row's account must have a series; rows of other accounts are not drawn.
        """
        end = end or date.today()
        self._days = [end - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
        column = {day.isoformat(): i for i, day in enumerate(self._days)}
        self._series = list(series)
        self._tokens = {s.account_id: [0.0] * days for s in self._series}
        self._cost = {s.account_id: [0.0] * days for s in self._series}
        for row in rows:
            i = column.get(row.day)
            if i is None or row.account_id not in self._tokens:
                continue
            self._tokens[row.account_id][i] += row.total_tokens
            self._cost[row.account_id][i] += row.cost_usd or 0.0
        self._empty_text = empty_text
        self._describe()
        self.update()

    @property
    def metric(self) -> ChartMetric:
        return self._metric

    def set_metric(self, metric: ChartMetric) -> None:
        self._metric = ChartMetric(metric)
        self._describe()
        self.update()

    @property
    def days(self) -> list[date]:
        return list(self._days)

    def is_empty(self) -> bool:
        return not any(any(values) for values in self._values().values())

    def empty_text(self) -> str:
        """What the chart says instead of bars; "" when it has bars to show."""
        if not self.is_empty():
            return ""
        if self._metric is ChartMetric.COST and any(any(v) for v in self._tokens.values()):
            return "No cost was reported for this period (local models report none)."
        return self._empty_text

    def totals(self) -> list[float]:
        """The height of each day's bar, oldest day first."""
        values = self._values()
        return [sum(v[i] for v in values.values()) for i in range(len(self._days))]

    def sizeHint(self) -> QSize:
        return QSize(720, 280)

    def minimumSizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        return QSize(320, 8 * line)

    # --- painting ------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        quiet = palette.color(QPalette.ColorRole.PlaceholderText)
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(base)
        painter.drawRect(frame)
        area = QRectF(self.rect()).adjusted(_PAD, _PAD, -_PAD, -_PAD)
        self._plot = QRectF()

        message = self.empty_text()
        if message:
            painter.setPen(quiet)
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, message)
            return

        fm = self.fontMetrics()
        line = fm.height()
        legend_bottom = self._paint_legend(painter, area, text)

        totals = self.totals()
        integer = self._metric is ChartMetric.TOKENS
        # About one gridline per two and a half lines of text keeps labels apart at any height.
        x_label_top = area.bottom() - line
        plot_top = legend_bottom + line
        ticks = nice_ticks(max(totals), max(1, int((x_label_top - 6 - plot_top) / (line * 2.5))), integer=integer)
        top = ticks[-1]
        step = ticks[1] - ticks[0]
        labels = [format_tokens(t) if integer else format_cost(t, step) for t in ticks]
        y_label_width = max(fm.horizontalAdvance(label) for label in labels)
        plot = QRectF(
            area.left() + y_label_width + 8, plot_top, area.width() - y_label_width - 8, x_label_top - 6 - plot_top
        )
        if plot.height() < line or plot.width() < len(self._days):
            return  # too small to say anything; the table below still does
        self._plot = plot

        grid = QColor(text)
        grid.setAlphaF(0.12)
        for tick, label in zip(ticks, labels, strict=True):
            y = plot.bottom() - tick / top * plot.height()
            painter.setPen(grid)
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(quiet)
            painter.drawText(
                QRectF(area.left(), y - line / 2, y_label_width, line),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )

        slot = plot.width() / len(self._days)
        bar_width = max(1.0, min(slot * 0.7, 3 * line))
        values = self._values()
        painter.setPen(Qt.PenStyle.NoPen)
        for i in range(len(self._days)):
            x = plot.left() + i * slot + (slot - bar_width) / 2
            bottom = plot.bottom()
            for series in self._series:
                value = values[series.account_id][i]
                if value <= 0:
                    continue
                height = value / top * plot.height()
                painter.setBrush(series.colour)
                painter.drawRect(QRectF(x, bottom - height, bar_width, height))
                bottom -= height
                if bar_width >= 4 and bottom > plot.top():
                    # A hairline of background between stacked accounts, so like colours stay apart.
                    painter.setBrush(base)
                    painter.drawRect(QRectF(x, bottom - 0.5, bar_width, 1.0))

        axis = QColor(text)
        axis.setAlphaF(0.45)
        painter.setPen(axis)
        painter.drawLine(QPointF(plot.left(), plot.bottom()), QPointF(plot.right(), plot.bottom()))
        self._paint_day_labels(painter, area, plot, x_label_top, quiet)

    def _paint_legend(self, painter: QPainter, area: QRectF, text: QColor) -> float:
        """The caption and one swatch per account with data, wrapped as needed; returns its bottom."""
        fm = self.fontMetrics()
        line = fm.height()
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text)
        caption = "Tokens per day" if self._metric is ChartMetric.TOKENS else "Cost per day (USD)"
        caption_width = painter.fontMetrics().horizontalAdvance(caption)
        painter.drawText(
            QRectF(area.left(), area.top(), caption_width + 1, line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            caption,
        )
        painter.setFont(self.font())
        swatch = max(8.0, round(line * 0.7))
        x = area.left() + caption_width + _LEGEND_GAP * 1.5
        y = area.top()
        values = self._values()
        for series in self._series:
            if not any(values[series.account_id]):
                continue
            label = fm.elidedText(
                series.label,
                Qt.TextElideMode.ElideRight,
                int(min(_LEGEND_LABEL_MAX, area.width() - swatch - _SWATCH_GAP)),
            )
            width = swatch + _SWATCH_GAP + fm.horizontalAdvance(label)
            if x + width > area.right() and x > area.left():
                x = area.left()
                y += line + 4
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(series.colour)
            painter.drawRoundedRect(QRectF(x, y + (line - swatch) / 2, swatch, swatch), 2, 2)
            painter.setPen(text)
            painter.drawText(
                QRectF(x + swatch + _SWATCH_GAP, y, width - swatch - _SWATCH_GAP + 1, line),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            x += width + _LEGEND_GAP
        return y + line

    def _paint_day_labels(self, painter: QPainter, area: QRectF, plot: QRectF, top: float, colour: QColor) -> None:
        fm = self.fontMetrics()
        labels = [self._day_label(day) for day in self._days]
        widest = max(fm.horizontalAdvance(label) for label in labels)
        slot = plot.width() / len(self._days)
        every = max(1, math.ceil((widest + 12) / slot))
        painter.setPen(colour)
        last = len(self._days) - 1
        free_until = area.right()  # labels go right to left, from today, which is always labelled
        for i in range(last, -1, -every):
            label = labels[i]
            width = fm.horizontalAdvance(label)
            centre = plot.left() + (i + 0.5) * slot
            left = min(max(centre - width / 2, area.left()), area.right() - width)
            if left + width > free_until:
                continue  # pushed into its neighbour by the edge of the chart
            painter.drawText(
                QRectF(left, top, width + 1, fm.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            free_until = left - 12

    # --- reactions -----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self._tooltip_at(event.pos().x())
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange):
            self.update()
        super().changeEvent(event)

    # --- helpers -------------------------------------------------------------------------------

    def _values(self) -> dict[str, list[float]]:
        return self._tokens if self._metric is ChartMetric.TOKENS else self._cost

    def _day_label(self, day: date) -> str:
        return self.locale().toString(_qdate(day), "MMM d")

    def _value_text(self, value: float) -> str:
        return f"{value:,.0f} tokens" if self._metric is ChartMetric.TOKENS else f"${value:,.4f}"

    def _tooltip_at(self, x: float) -> str:
        if self._plot.isEmpty() or not self._plot.left() <= x < self._plot.right():
            return ""
        i = int((x - self._plot.left()) / (self._plot.width() / len(self._days)))
        values = self._values()
        parts = [
            f"{series.label}: {self._value_text(values[series.account_id][i])}"
            for series in self._series
            if values[series.account_id][i] > 0
        ]
        day = self.locale().toString(_qdate(self._days[i]), QLocale.FormatType.LongFormat)
        return "\n".join([day, *parts] if parts else [day, "Nothing used."])

    def _describe(self) -> None:
        totals = self.totals()
        if not totals or not any(totals):
            self.setAccessibleDescription(self.empty_text())
            return
        peak = max(range(len(totals)), key=totals.__getitem__)
        what = "Tokens" if self._metric is ChartMetric.TOKENS else "Cost"
        self.setAccessibleDescription(
            f"{what} per day for the last {len(totals)} days; the most, "
            f"{self._value_text(totals[peak])}, on {self._day_label(self._days[peak])}."
        )
