"""The accounts list as a Qt model (on a base the pools list shares), kept in step with AccountService by
precise row updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop_app.domain.accounts import Account
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.ui.common.events import follow
from desktop_app.ui.theme import colours

AccountIdRole = Qt.ItemDataRole.UserRole
ProviderIdRole = Qt.ItemDataRole.UserRole + 1
DetailRole = Qt.ItemDataRole.UserRole + 2  # "Provider · base URL": the second line of an item
ColourRole = Qt.ItemDataRole.UserRole + 3  # "#rrggbb" or ""
EnabledRole = Qt.ItemDataRole.UserRole + 4
StatusRole = Qt.ItemDataRole.UserRole + 5  # AccountStates.status_text: broken, cooling down, rate limits
StatusKindRole = Qt.ItemDataRole.UserRole + 6  # "broken", "down", "cooling", "limits" or ""

DISABLED_MARKER = "disabled"

_Index = QModelIndex | QPersistentModelIndex


def account_detail(account: Account) -> str:
    return f"{account.provider.name} · {account.effective_base_url}"


def colour_icon(colour: str, size: int = 12) -> QIcon:
    """A filled dot of `colour` (an empty icon for no colour), for plain item views."""
    if not colour:
        return QIcon()
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    painter.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    painter.end()
    return QIcon(pixmap)


# --- keeping a list model's rows in step with a service's list ---------------------------------


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_Identified)


def sync_rows(model: QAbstractListModel, rows: list[Item], new: Sequence[Item]) -> None:
    """Turn `rows` (the model's own list) into `new` with row signals views can follow.

    Removals, then moves, then insertions, then in-place edits: a reorder keeps the selection on
    the item that moved, an insertion in the middle (a duplicate placed after its original) does
    not reset the view.
    """
    new_ids = [item.id for item in new]
    new_set = set(new_ids)
    for row in range(len(rows) - 1, -1, -1):
        if rows[row].id not in new_set:
            model.beginRemoveRows(QModelIndex(), row, row)
            del rows[row]
            model.endRemoveRows()
    kept = {item.id for item in rows}
    order = [item_id for item_id in new_ids if item_id in kept]
    for target, item_id in enumerate(order):
        if rows[target].id != item_id:
            source = next(row for row in range(target + 1, len(rows)) if rows[row].id == item_id)
            model.beginMoveRows(QModelIndex(), source, source, QModelIndex(), target)
            rows.insert(target, rows.pop(source))
            model.endMoveRows()
    for row, item in enumerate(new):
        if row >= len(rows) or rows[row].id != item.id:
            model.beginInsertRows(QModelIndex(), row, row)
            rows.insert(row, item)
            model.endInsertRows()
    for row, item in enumerate(new):
        if rows[row] != item:
            rows[row] = item
            index = model.index(row)
            model.dataChanged.emit(index, index)


# --- the models --------------------------------------------------------------------------------


class ItemListModel(QAbstractListModel):
    """One row per item of a service's list, in the service's order: its label shown, `detail(item)`
    as the tooltip and second line, its id under `ID_ROLE`; a subclass adds its own roles in
    `item_data`. Read-only: rows change only by `sync_rows` as the service's list does.
    """

    ID_ROLE: ClassVar[int]
    ROLE_NAMES: ClassVar[dict[int, bytes]]

    def __init__(self, rows: list[Any], parent: Any = None) -> None:
        super().__init__(parent)
        self._rows = rows

    def detail(self, item: Any) -> str:
        raise NotImplementedError

    def item_data(self, item: Any, role: int) -> Any:
        """A role beyond the label, the detail and the id; None when the model has no such role."""
        return None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.checkIndex(index, QAbstractListModel.CheckIndexOption.IndexIsValid):
            return None
        item = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.label
        if role in (Qt.ItemDataRole.ToolTipRole, DetailRole):
            return self.detail(item)
        if role == self.ID_ROLE:
            return item.id
        return self.item_data(item, role)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def roleNames(self) -> dict[int, bytes]:
        names = dict(super().roleNames())
        names.update(self.ROLE_NAMES)
        return names

    def item_at(self, row: int) -> Any:
        """The item in `row`, or None."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, item_id: str) -> int:
        """The row of `item_id`, or -1."""
        return next((row for row, item in enumerate(self._rows) if item.id == item_id), -1)


class AccountListModel(ItemListModel):
    """One row per account, in the order the service keeps them, with each account's live status."""

    STATUS_TICK_MS = 1000  # a cooldown counts down, a rate-limit reset approaches
    ID_ROLE = AccountIdRole
    ROLE_NAMES: ClassVar[dict[int, bytes]] = {
        AccountIdRole: b"accountId",
        ProviderIdRole: b"providerId",
        DetailRole: b"detail",
        ColourRole: b"colour",
        EnabledRole: b"enabled",
        StatusRole: b"status",
        StatusKindRole: b"statusKind",
    }

    def __init__(self, *, accounts: AccountService, parent: Any = None) -> None:
        super().__init__(accounts.accounts, parent)
        self._service = accounts
        self._rows: list[Account]
        self._ticker = QTimer(self, interval=self.STATUS_TICK_MS)
        self._ticker.timeout.connect(self._on_ticker_timeout)
        follow(self, accounts.on_accounts_changed, self._on_accounts_changed)
        follow(self, accounts.states.on_changed, self._on_state_changed)
        self._update_ticker()

    # --- reading -------------------------------------------------------------------------------

    def detail(self, item: Account) -> str:
        return account_detail(item)

    def item_data(self, item: Account, role: int) -> Any:
        if role == Qt.ItemDataRole.DecorationRole:
            return QColor(item.colour) if item.colour else None
        if role == ProviderIdRole:
            return item.provider_id
        if role == ColourRole:
            return item.colour
        if role == EnabledRole:
            return item.enabled
        if role == StatusRole:
            return self._service.states.status_text(item.id)
        if role == StatusKindRole:
            return self._status_kind(item.id)
        return None

    def account_at(self, row: int) -> Account | None:
        return self.item_at(row)

    @property
    def ticking(self) -> bool:
        """Whether some status line is counting down, so rows are refreshed every second."""
        return self._ticker.isActive()

    def _status_kind(self, account_id: str) -> str:
        states = self._service.states
        health = states.health(account_id)
        if health.broken:
            return "broken"
        if health.down:
            return "down"
        if states.cooling_for(account_id) > 0:
            return "cooling"
        return "limits" if health.rate_limits is not None else ""

    def _changes_with_time(self, account_id: str) -> bool:
        """Whether the status line of this account says something that a second from now is stale."""
        states = self._service.states
        if states.cooling_for(account_id) > 0:
            return True
        limits = states.health(account_id).rate_limits
        if limits is None:
            return False
        now = datetime.now(UTC)
        return any(item.resets_at is not None and item.resets_at > now for item in limits.limits.values())

    # --- following the service -----------------------------------------------------------------

    def _on_accounts_changed(self) -> None:
        sync_rows(self, self._rows, self._service.accounts)
        self._update_ticker()

    def _on_state_changed(self, account_id: str) -> None:
        row = self.row_of(account_id)
        if row >= 0:
            index = self.index(row)
            self.dataChanged.emit(index, index, [StatusRole, StatusKindRole])
        self._update_ticker()

    def _on_ticker_timeout(self) -> None:
        # Every row that was counting down is refreshed, including the one whose cooldown just ended.
        for row, account in enumerate(self._rows):
            health = self._service.states.health(account.id)
            if health.cooldown_until or health.rate_limits is not None:
                index = self.index(row)
                self.dataChanged.emit(index, index, [StatusRole, StatusKindRole])
        self._update_ticker()

    def _update_ticker(self) -> None:
        if any(self._changes_with_time(account.id) for account in self._rows):
            if not self._ticker.isActive():
                self._ticker.start()
        else:
            self._ticker.stop()


class AccountItemDelegate(QStyledItemDelegate):
    """Per account: a colour dot and the name (with a "disabled" marker), the provider and URL below
    it in a quieter colour, and a third line with the live status (broken, cooling down, rate limits).

    With `status_line=False` it draws two lines (the pools list uses it that way).
    """

    _PAD = 6
    _DOT = 10

    def __init__(self, parent: Any = None, *, status_line: bool = True) -> None:
        super().__init__(parent)
        self._lines = 3 if status_line else 2

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        height = option.fontMetrics.height()
        return QSize(200, self._lines * height + (self._lines + 1) * self._PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        opt.icon = QIcon()
        opt.features &= ~QStyleOptionViewItem.ViewItemFeature.HasDecoration
        widget: QWidget | None = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        active = bool(opt.state & QStyle.StateFlag.State_Active)
        group = QPalette.ColorGroup.Normal if active else QPalette.ColorGroup.Inactive
        role = QPalette.ColorRole
        enabled = index.data(EnabledRole) is not False
        main = opt.palette.color(group, role.HighlightedText if selected else role.Text)
        quiet = opt.palette.color(group, role.HighlightedText if selected else role.PlaceholderText)
        line = option.fontMetrics.height()
        rect = option.rect.adjusted(self._PAD * 2, self._PAD, -self._PAD * 2, -self._PAD)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)

        colour = index.data(ColourRole)
        text_left = rect.left()
        if colour is not None:  # an account row: the dot's place is kept even without a colour
            centre = QPointF(rect.left() + self._DOT / 2, rect.top() + line / 2)
            if colour:
                painter.setPen(QPen(opt.palette.color(group, role.Base), 1) if selected else Qt.PenStyle.NoPen)
                painter.setBrush(QColor(colour))
                painter.drawEllipse(centre, self._DOT / 2, self._DOT / 2)
            if index.data(StatusKindRole) == "down":  # the health check's verdict, on the dot
                painter.setPen(QPen(QColor(colours(opt.palette).error), 2))
                painter.setBrush(Qt.BrushStyle.NoBrush if colour else QColor(colours(opt.palette).error))
                painter.drawEllipse(centre, self._DOT / 2 + 1.5, self._DOT / 2 + 1.5)
            text_left += self._DOT + self._PAD
        width = rect.right() - text_left

        bold = painter.font()
        bold.setBold(True)
        marker_width = 0
        if not enabled:
            marker_font = painter.font()
            painter.setFont(marker_font)
            marker_width = painter.fontMetrics().horizontalAdvance(DISABLED_MARKER) + 2 * self._PAD
            marker = QRect(rect.right() - marker_width + 1, rect.top(), marker_width, line)
            painter.setPen(quiet)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(marker).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
            painter.drawText(marker, Qt.AlignmentFlag.AlignCenter, DISABLED_MARKER)
            marker_width += self._PAD
        painter.setFont(bold)
        painter.setPen(main if enabled else quiet)
        first = QRect(text_left, rect.top(), width - marker_width, line)
        painter.drawText(
            first,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            painter.fontMetrics().elidedText(str(index.data() or ""), Qt.TextElideMode.ElideRight, first.width()),
        )
        painter.setFont(option.font)
        painter.setPen(quiet)
        second = QRect(text_left, rect.top() + line + self._PAD, width, line)
        painter.drawText(
            second,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            option.fontMetrics.elidedText(str(index.data(DetailRole) or ""), Qt.TextElideMode.ElideRight, width),
        )
        status = str(index.data(StatusRole) or "") if self._lines == 3 else ""
        if status:
            kind = index.data(StatusKindRole)
            if selected:
                painter.setPen(main)
            elif kind in ("broken", "down"):
                painter.setPen(QColor(colours(opt.palette).error))
            elif kind == "cooling":
                painter.setPen(QColor(colours(opt.palette).busy))
            third = QRect(text_left, rect.top() + 2 * (line + self._PAD), width, line)
            painter.drawText(
                third,
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                option.fontMetrics.elidedText(status, Qt.TextElideMode.ElideRight, width),
            )
        painter.restore()
