"""Search hits as a Qt list model over a paged query, and the delegate that draws them as rich text."""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.search import MATCH_END, MATCH_START, SearchHit, SearchQuery

_Index = QModelIndex | QPersistentModelIndex
HIT_ROLE = Qt.ItemDataRole.UserRole
PAGE = 25  # a view's worth and more: each hit is a rich-text document to lay out
DOCUMENTS_KEPT = 4 * PAGE

Fetch = Callable[[SearchQuery, int, int], Awaitable[list[SearchHit]]]  # (query, limit, offset)


def snippet_html(snippet: str, *, mark: str) -> str:
    """The snippet escaped for rich text, its matches in bold on `mark` (a CSS colour)."""
    text = html.escape(" ".join(snippet.split()))
    return text.replace(MATCH_START, f'<b style="background-color:{mark}">').replace(MATCH_END, "</b>")


def hit_html(hit: SearchHit, *, mark: str, dim: str, account: str = "") -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.when)) if hit.when else ""
    about = " · ".join(filter(None, [when, hit.model, account]))
    lines = [f"<b>{html.escape(hit.title)}</b>", f'<span style="color:{dim}">{html.escape(about)}</span>']
    if hit.message_id is not None:
        lines.append(snippet_html(hit.snippet, mark=mark))
    else:
        lines[0] = f"<b>{snippet_html(hit.snippet, mark=mark)}</b>" if MATCH_START in hit.snippet else lines[0]
    return "<br>".join(lines)


class SearchResultsModel(QAbstractListModel):
    """The hits of the last query; more pages are read as the view scrolls down (fetchMore)."""

    def __init__(self, *, fetch: Fetch, spawn: Callable[[Coroutine[Any, Any, Any]], object], parent=None) -> None:
        super().__init__(parent)
        self._fetch = fetch
        self._spawn = spawn
        self._hits: list[SearchHit] = []
        self._query: SearchQuery | None = None
        self._generation = 0  # a newer query makes the answers of older ones stale
        self._more = False
        self._loading = False
        self.problem: StorageFailed | None = None  # why the last page could not be read

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._hits):
            return None
        hit = self._hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return hit.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return hit.snippet.replace(MATCH_START, "").replace(MATCH_END, "")
        if role == HIT_ROLE:
            return hit
        return None

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:
        return not parent.isValid() and self._more and not self._loading

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:
        if self.canFetchMore(parent):
            self._loading = True
            self._spawn(self.load_page(self._generation))

    @property
    def loading(self) -> bool:
        return self._loading

    def hit_at(self, row: int) -> SearchHit | None:
        return self._hits[row] if 0 <= row < len(self._hits) else None

    async def show(self, query: SearchQuery) -> bool:
        """Forget the old hits and read the first page of `query`'s; False if a newer query came meanwhile."""
        self._generation += 1
        self.beginResetModel()
        self._hits, self._query, self._more, self.problem = [], query, not query.empty, None
        self.endResetModel()
        generation = self._generation
        if self._more:
            self._loading = True
            await self.load_page(generation)
        return generation == self._generation

    async def load_page(self, generation: int) -> None:
        query = self._query
        try:
            if query is None or generation != self._generation:
                return
            try:
                page = await self._fetch(query, PAGE, len(self._hits))
            except StorageFailed as exc:
                if generation == self._generation:
                    self.problem, self._more = exc, False
                return
            if generation != self._generation:
                return
            self._more = len(page) == PAGE
            if page:
                start = len(self._hits)
                self.beginInsertRows(QModelIndex(), start, start + len(page) - 1)
                self._hits.extend(page)
                self.endInsertRows()
        finally:
            if generation == self._generation:
                self._loading = False


class HitDelegate(QStyledItemDelegate):
    """Title, date · model · account, then the snippet with its matches marked."""

    def __init__(self, *, account_label: Callable[[str], str], parent=None) -> None:
        super().__init__(parent)
        self._account_label = account_label
        # Laid out once for the size and again for the paint otherwise: a page of hits costs twice.
        self._documents: dict[tuple, QTextDocument] = {}

    def _document(self, option: QStyleOptionViewItem, index: _Index) -> QTextDocument:
        hit: SearchHit = index.data(HIT_ROLE)
        palette = option.palette  # type: ignore[attr-defined]
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        text = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        mark = palette.color(QPalette.ColorRole.Highlight if not selected else QPalette.ColorRole.Base)
        mark.setAlpha(90)
        dim = palette.color(QPalette.ColorRole.PlaceholderText) if not selected else text
        account = self._account_label(hit.account_id) if hit.account_id else ""
        # sizeHint's option has no rect: the row is as wide as the view, as when painted.
        view = option.widget  # type: ignore[attr-defined]
        width = option.rect.width() or (view.viewport().width() if view is not None else 0)  # type: ignore[attr-defined]
        width = max(width, 120)
        font = option.font  # type: ignore[attr-defined]
        key = (hit, account, text.rgba(), mark.rgba(), dim.rgba(), font.key(), width)
        if (document := self._documents.get(key)) is not None:
            return document
        document = QTextDocument()
        document.setDefaultFont(font)
        document.setDocumentMargin(5)
        document.setDefaultStyleSheet(f"body {{ color: {text.name()}; }}")
        rgba = f"rgba({mark.red()},{mark.green()},{mark.blue()},{mark.alpha()})"
        document.setHtml(f"<body>{hit_html(hit, mark=rgba, dim=dim.name(), account=account)}</body>")
        document.setTextWidth(width)
        if len(self._documents) >= DOCUMENTS_KEPT:
            self._documents.clear()
        self._documents[key] = document
        return document

    def paint(self, painter, option: QStyleOptionViewItem, index: _Index) -> None:
        self.initStyleOption(option, index)
        style = option.widget.style() if option.widget else None  # type: ignore[attr-defined]
        option.text = ""  # type: ignore[attr-defined]
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)  # type: ignore[attr-defined]
        document = self._document(option, index)
        painter.save()
        painter.translate(option.rect.topLeft())  # type: ignore[attr-defined]
        context = QAbstractTextDocumentLayout.PaintContext()
        context.clip = QRectF(0, 0, option.rect.width(), option.rect.height())  # type: ignore[attr-defined]
        document.documentLayout().draw(painter, context)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        self.initStyleOption(option, index)
        document = self._document(option, index)
        return QSize(int(document.idealWidth()), int(document.size().height()) + 2)
