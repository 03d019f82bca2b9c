"""The accounts list as a Qt model, kept in step with AccountService by precise row updates."""

from __future__ import annotations

import weakref
from typing import Any

import shiboken6
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop_app.domain.accounts import Account
from desktop_app.services.accounts import AccountService

AccountIdRole = Qt.ItemDataRole.UserRole
ProviderIdRole = Qt.ItemDataRole.UserRole + 1
DetailRole = Qt.ItemDataRole.UserRole + 2  # "Provider · base URL": the second line of an item

_Index = QModelIndex | QPersistentModelIndex


def account_detail(account: Account) -> str:
    return f"{account.provider.name} · {account.effective_base_url}"


class AccountListModel(QAbstractListModel):
    """One row per account, in the order the service keeps them."""

    def __init__(self, *, accounts: AccountService, parent: Any = None) -> None:
        super().__init__(parent)
        self._service = accounts
        self._rows: list[Account] = accounts.accounts
        # The service has no way to unsubscribe, so it holds only a weak reference to us.
        ref = weakref.ref(self)

        def listener() -> None:
            model = ref()
            if model is not None and shiboken6.isValid(model):
                model._on_accounts_changed()

        accounts.on_accounts_changed(listener)

    # --- reading -------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.checkIndex(index, QAbstractListModel.CheckIndexOption.IndexIsValid):
            return None
        account = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return account.label
        if role in (Qt.ItemDataRole.ToolTipRole, DetailRole):
            return account_detail(account)
        if role == AccountIdRole:
            return account.id
        if role == ProviderIdRole:
            return account.provider_id
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def roleNames(self) -> dict[int, bytes]:
        names = dict(super().roleNames())
        names.update({AccountIdRole: b"accountId", ProviderIdRole: b"providerId", DetailRole: b"detail"})
        return names

    def account_at(self, row: int) -> Account | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, account_id: str) -> int:
        """The row of `account_id`, or -1."""
        return next((row for row, a in enumerate(self._rows) if a.id == account_id), -1)

    # --- following the service -----------------------------------------------------------------

    def _on_accounts_changed(self) -> None:
        new = self._service.accounts
        old_ids = [a.id for a in self._rows]
        new_ids = [a.id for a in new]
        new_set = set(new_ids)
        kept = [i for i in old_ids if i in new_set]
        if kept != new_ids[: len(kept)]:
            # Reordered or replaced wholesale: nothing precise to say.
            self.beginResetModel()
            self._rows = new
            self.endResetModel()
            return
        # Removals first (from the end, so rows stay valid), then appends, then edits in place.
        for row in range(len(old_ids) - 1, -1, -1):
            if old_ids[row] not in new_set:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        if len(new) > len(self._rows):
            self.beginInsertRows(QModelIndex(), len(self._rows), len(new) - 1)
            self._rows.extend(new[len(self._rows):])
            self.endInsertRows()
        for row, account in enumerate(new):
            if self._rows[row] != account:
                self._rows[row] = account
                index = self.index(row)
                self.dataChanged.emit(index, index)


class AccountItemDelegate(QStyledItemDelegate):
    """Two lines per account: the name, and below it in a quieter colour the provider and URL."""

    _PAD = 6

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        height = option.fontMetrics.height()
        return QSize(200, 2 * height + 3 * self._PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget: QWidget | None = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        active = bool(opt.state & QStyle.StateFlag.State_Active)
        group = QPalette.ColorGroup.Normal if active else QPalette.ColorGroup.Inactive
        role = QPalette.ColorRole
        main = opt.palette.color(group, role.HighlightedText if selected else role.Text)
        quiet = role.HighlightedText if selected else role.PlaceholderText
        line = option.fontMetrics.height()
        rect = option.rect.adjusted(self._PAD * 2, self._PAD, -self._PAD * 2, -self._PAD)
        painter.save()
        painter.setPen(main)
        bold = painter.font()
        bold.setBold(True)
        painter.setFont(bold)
        first = QRect(rect.left(), rect.top(), rect.width(), line)
        painter.drawText(first, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(str(index.data() or ""), Qt.TextElideMode.ElideRight,
                                                          rect.width()))
        painter.setFont(option.font)
        painter.setPen(opt.palette.color(group, quiet))
        second = QRect(rect.left(), rect.top() + line + self._PAD, rect.width(), line)
        painter.drawText(second, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         option.fontMetrics.elidedText(str(index.data(DetailRole) or ""),
                                                       Qt.TextElideMode.ElideRight, rect.width()))
        painter.restore()
