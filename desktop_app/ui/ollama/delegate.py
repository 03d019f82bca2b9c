"""How one pull looks in the list of pulls: name and state, a progress bar, the figures, and the
row's own Cancel / Resume / Retry / Remove buttons, painted rather than made of widgets so a
list of many pulls updating ~20 times a second each stays cheap."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.ui.ollama.models import ProgressRole, job_detail, job_headline
from desktop_app.ui.theme import colours


class PullJobDelegate(QStyledItemDelegate):
    """Paints one pull: name and state, a progress bar, the figures, and its buttons."""

    action_requested = Signal(str, str)  # model name, "cancel" | "resume" | "retry" | "remove"

    MARGIN = 8
    BUTTON_WIDTH = 78
    BUTTON_HEIGHT = 26
    LABELS: ClassVar[dict[str, str]] = {"cancel": "Cancel", "resume": "Resume", "retry": "Retry", "remove": "Remove"}

    # What a row says; another kind of download (Hugging Face files) words it its own way.
    headline = staticmethod(job_headline)
    detail = staticmethod(job_detail)

    @staticmethod
    def actions_for(progress: PullProgress) -> tuple[str, ...]:
        if progress.state in (PullState.RUNNING, PullState.RETRYING):
            return ("cancel",)
        if progress.state is PullState.DONE:
            return ("remove",)
        if progress.state is PullState.FAILED:
            return ("retry", "remove")
        return ("resume", "remove")

    def button_rects(self, rect: QRect, progress: PullProgress) -> dict[str, QRect]:
        rects: dict[str, QRect] = {}
        right = rect.right() - self.MARGIN
        top = rect.top() + (rect.height() - self.BUTTON_HEIGHT) // 2
        for action in reversed(self.actions_for(progress)):
            left = right - self.BUTTON_WIDTH + 1
            rects[action] = QRect(left, top, self.BUTTON_WIDTH, self.BUTTON_HEIGHT)
            right = left - 6
        return rects

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        line = option.fontMetrics.height()
        return QSize(360, self.MARGIN * 2 + line * 2 + 16 + 8)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        progress: PullProgress | None = index.data(ProgressRole)
        if progress is None:
            return
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, background, painter, widget)

        buttons = self.button_rects(option.rect, progress)
        left = option.rect.left() + self.MARGIN
        content_right = min((r.left() for r in buttons.values()), default=option.rect.right()) - 12
        width = max(40, content_right - left)
        metrics = option.fontMetrics
        line = metrics.height()
        top = option.rect.top() + self.MARGIN
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.save()
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(option.palette.color(text_role))
        headline = self.headline(progress)
        headline_width = metrics.horizontalAdvance(headline) + 12
        name_rect = QRect(left, top, max(20, width - headline_width), line)
        painter.drawText(
            name_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            painter.fontMetrics().elidedText(progress.model, Qt.TextElideMode.ElideMiddle, name_rect.width()),
        )
        painter.setFont(option.font)
        if progress.state is PullState.FAILED:
            painter.setPen(
                option.palette.color(QPalette.ColorRole.HighlightedText)
                if selected
                else QColor(colours(option.palette).error)
            )
        painter.drawText(
            QRect(left, top, width, line), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, headline
        )
        painter.restore()

        bar = QStyleOptionProgressBar()
        bar.rect = QRect(left, top + line + 4, width, 16)
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.direction = option.direction
        bar.palette = option.palette
        bar.fontMetrics = metrics
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(progress.fraction * 1000)
        bar.textVisible = False
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)

        painter.save()
        detail_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
        painter.setPen(
            QColor(colours(option.palette).error)
            if progress.state is PullState.FAILED and not selected
            else option.palette.color(detail_role)
        )
        detail_rect = QRect(left, top + line + 24, width, line)
        painter.drawText(
            detail_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(self.detail(progress), Qt.TextElideMode.ElideRight, width),
        )
        painter.restore()

        for action, rect in buttons.items():
            button = QStyleOptionButton()
            button.rect = rect
            button.text = self.LABELS[action]
            button.palette = option.palette
            button.fontMetrics = metrics
            button.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Raised
            style.drawControl(QStyle.ControlElement.CE_PushButton, button, painter, widget)

    def editorEvent(
        self, event: QEvent, model, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
        ):
            progress: PullProgress | None = index.data(ProgressRole)
            if progress is not None:
                for action, rect in self.button_rects(option.rect, progress).items():
                    if rect.contains(event.position().toPoint()):
                        self.action_requested.emit(progress.model, action)
                        return True
        return super().editorEvent(event, model, option, index)
