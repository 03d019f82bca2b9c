"""Qt list models for the chat pane: conversations, and the models every account offers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from desktop_app.domain.conversations import Conversation
from desktop_app.domain.errors import StorageFailed
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.chat.conversation_library import list_key

_Index = QModelIndex | QPersistentModelIndex
ID_ROLE = Qt.ItemDataRole.UserRole
PIN_MARK = "▲ "  # before a pinned conversation's title


Page = Callable[..., Awaitable[list[Conversation]]]  # ConversationStore.conversation_page
PAGE = 100
# Rows read at most, past the first page, to show the conversation to reopen selected in the list;
# one further down is opened without its row (a start must not read 100,000 rows).
REACH = 20 * PAGE


class ConversationListModel(QAbstractListModel):
    """The conversations in the list's order, read a page at a time as the view scrolls (fetchMore).

    `load()` reads the first page; each later page starts after the last row read (a keyset), so
    conversations moved to the front meanwhile (upsert_front) are not read twice."""

    def __init__(self, *, page: Page | None = None, spawn: Callable[[Coroutine], object] | None = None, parent=None):
        super().__init__(parent)
        self._items: list[Conversation] = []
        self._page = page
        self._spawn = spawn
        self._after: tuple[int, float, int] | None = None  # the key of the last row read: the next page's start
        self._more = False
        self._loading = False
        self._generation = 0  # a reload makes pages asked for before it stale
        self.reach = REACH

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            tags = "".join(f"  #{tag}" for tag in item.tags)
            return f"{PIN_MARK if item.pinned else ''}{item.title}{tags}"
        if role == Qt.ItemDataRole.EditRole:
            return item.title
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [item.title, item.model or "no model"]
            if item.pinned:
                lines.append("Pinned")
            if item.tags:
                lines.append("Tags: " + ", ".join(item.tags))
            return "\n".join(lines)
        if role == ID_ROLE:
            return item.id
        return None

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:
        return not parent.isValid() and self._more and not self._loading and self._spawn is not None

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:
        if self.canFetchMore(parent) and self._spawn is not None:
            self._loading = True
            self._spawn(self._load_next(self._generation))

    async def load(self, through_id: int | None = None) -> None:
        """Read the first page again (and, with `through_id`, the rows down to that conversation,
        `reach` at most). StorageFailed propagates, the rows shown kept."""
        assert self._page is not None
        self._generation += 1
        generation = self._generation
        items = await self._page(limit=PAGE)
        if through_id is not None and all(c.id != through_id for c in items) and len(items) == PAGE:
            items += await self._page(after=list_key(items[-1]), through_id=through_id, limit=self.reach)
        if generation != self._generation:
            return
        self._more = len(items) >= PAGE
        self._loading = False
        self._after = list_key(items[-1]) if items else None
        self.set_conversations(items)

    async def _load_next(self, generation: int) -> None:
        assert self._page is not None
        try:
            page = await self._page(after=self._after, limit=PAGE)
        except StorageFailed:
            page = None  # the pane's banner says why; its Retry reloads the list
            self._more = False
        finally:
            if generation == self._generation:
                self._loading = False
        if generation != self._generation or page is None:
            return
        self._more = len(page) == PAGE
        if page:
            self._after = list_key(page[-1])
        known = {c.id for c in self._items}
        page = [c for c in page if c.id not in known]
        if page:
            start = len(self._items)
            self.beginInsertRows(QModelIndex(), start, start + len(page) - 1)
            self._items.extend(page)
            self.endInsertRows()

    def set_conversations(self, items: list[Conversation]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def conversation_at(self, row: int) -> Conversation | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def row_of(self, conversation_id: int) -> int:
        return next((i for i, c in enumerate(self._items) if c.id == conversation_id), -1)

    def upsert_front(self, conversation: Conversation) -> None:
        """Put `conversation` first among the pinned or the others (it was just used), inserting it if new."""
        row = self.row_of(conversation.id)
        if not conversation.pinned and self._more and self._items and self._items[-1].pinned:
            # Its place is after pinned conversations not read yet: a later page brings it there.
            self.remove(conversation.id)
            return
        front = 0 if conversation.pinned else sum(1 for c in self._items if c.pinned and c.id != conversation.id)
        if row == front:
            self._items[row] = conversation
            self.dataChanged.emit(self.index(row), self.index(row))
            return
        if row >= 0:
            # beginMoveRows counts the destination before the row leaves.
            self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), front if front < row else front + 1)
            self._items.pop(row)
            self._items.insert(front, conversation)
            self.endMoveRows()
            return
        self.beginInsertRows(QModelIndex(), front, front)
        self._items.insert(front, conversation)
        self.endInsertRows()

    def remove(self, conversation_id: int) -> None:
        row = self.row_of(conversation_id)
        if row < 0:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        self._items.pop(row)
        self.endRemoveRows()

    def refresh_title(self, conversation_id: int, title: str) -> None:
        row = self.row_of(conversation_id)
        if row >= 0:
            self._items[row].title = title
            self.dataChanged.emit(self.index(row), self.index(row))


@dataclass(frozen=True, slots=True)
class PickerEntry:
    account_id: str  # an account, pool or route id
    account_label: str
    model: str  # for a route: its name (each target names its own model)
    is_route: bool = False

    @property
    def text(self) -> str:
        return f"{self.model}  —  {self.account_label}"

    @property
    def tooltip(self) -> str:
        if self.is_route:
            return f"Route “{self.model}”: its targets in order, moving on when one cannot answer"
        return f"{self.model} on account “{self.account_label}”"


class ModelPickerModel(QAbstractListModel):
    """Routes, then every pool's and account's models (from each account's cached list), grouped by account."""

    def __init__(self, *, accounts: AccountService, parent=None) -> None:
        super().__init__(parent)
        self._accounts = accounts
        self._entries: list[PickerEntry] = []
        self.reload()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.text
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.tooltip
        if role == ID_ROLE:
            return (entry.account_id, entry.model)
        return None

    def reload(self) -> None:
        entries = []
        for route in self._accounts.routes:
            if route.targets:
                count = len(route.targets)
                label = f"route, {count} target{'s' if count != 1 else ''}"
                entries.append(PickerEntry(route.id, label, route.label, is_route=True))
        for pool in self._accounts.pools:
            for model in self._accounts.target_models(pool.id):
                entries.append(PickerEntry(pool.id, f"{pool.label} (pool)", model))
        for account in self._accounts.accounts:
            if not account.enabled:
                continue
            for model in self._accounts.cached_models(account.id):
                entries.append(PickerEntry(account.id, account.label, model))
        self.beginResetModel()
        self._entries = entries
        self.endResetModel()

    def entry_at(self, row: int) -> PickerEntry | None:
        return self._entries[row] if 0 <= row < len(self._entries) else None

    def row_of(self, account_id: str, model: str) -> int:
        """The row of that model of an account or pool; of a route by its id alone (it may have been renamed)."""
        return next(
            (i for i, e in enumerate(self._entries) if e.account_id == account_id and (e.is_route or e.model == model)),
            -1,
        )
