"""The search field above the conversation list, its filters and its results (read off the GUI thread)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, time
from typing import Any

from PySide6.QtCore import QDate, QModelIndex, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.search import SearchHit, SearchQuery
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.ui.chat.search_results import HIT_ROLE, HitDelegate, SearchResultsModel

DEBOUNCE_MS = 200  # results as you type, one query per pause


class SearchPanel(QWidget):
    """Type to search; Filters opens model, account, tag, dates, errors, pinned and reasoning.

    `hit_opened` carries the query and the hit picked (Enter or a click). While a search is in use
    `active_changed(True)` tells the conversation list to make room for the results.
    """

    hit_opened = Signal(object, object)  # (SearchQuery, SearchHit)
    active_changed = Signal(bool)
    searched = Signal()  # a query's first page is shown (or its failure said)

    def __init__(
        self,
        *,
        store: ConversationStore,
        spawn: Callable[[Coroutine[Any, Any, Any]], object],
        account_label: Callable[[str], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._spawn = spawn
        self._account_label = account_label
        self._active = False
        self.field = QLineEdit(placeholderText="Search conversations", clearButtonEnabled=True)
        self.filters_button = QToolButton(text="Filters", checkable=True)
        self.filters_button.setToolTip("Model, account, tag, dates, errors, pinned")
        self.model_filter = QComboBox()
        self.account_filter = QComboBox()
        self.tag_filter = QComboBox()
        for combo, anything in (
            (self.model_filter, "Any model"),
            (self.account_filter, "Any account"),
            (self.tag_filter, "Any tag"),
        ):
            combo.addItem(anything, "")
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.dates = QCheckBox("From")
        today = QDate.currentDate()
        self.since = QDateEdit(today.addMonths(-1), calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.until = QDateEdit(today, calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.has_errors = QCheckBox("Has errors")
        self.pinned = QCheckBox("Pinned")
        self.reasoning = QCheckBox("Reasoning")
        self.reasoning.setToolTip("Search the replies' reasoning too")
        self.filters = QWidget()
        grid = QGridLayout(self.filters)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.model_filter, 0, 0, 1, 2)
        grid.addWidget(self.account_filter, 1, 0, 1, 2)
        grid.addWidget(self.tag_filter, 2, 0, 1, 2)
        dates = QHBoxLayout()
        dates.addWidget(self.dates)
        dates.addWidget(self.since, 1)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.until, 1)
        grid.addLayout(dates, 3, 0, 1, 2)
        grid.addWidget(self.has_errors, 4, 0)
        grid.addWidget(self.pinned, 4, 1)
        grid.addWidget(self.reasoning, 5, 0)
        self.filters.setVisible(False)
        self.results = SearchResultsModel(fetch=self._fetch, spawn=spawn, parent=self)
        self.view = QListView()
        self.view.setModel(self.results)
        self.view.setItemDelegate(HitDelegate(account_label=account_label, parent=self.view))
        self.view.setWordWrap(True)
        self.view.setUniformItemSizes(False)
        self.view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.view.setVisible(False)
        self.status = QLabel(objectName="searchStatus")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("QLabel#searchStatus { color: palette(placeholder-text); }")
        self.status.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.field, 1)
        row.addWidget(self.filters_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.filters)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_debounce_timeout)
        self.field.textChanged.connect(self._debounce.start)
        self.field.returnPressed.connect(self._on_field_return_pressed)
        self.filters_button.toggled.connect(self._on_filters_toggled)
        for combo in (self.model_filter, self.account_filter, self.tag_filter):
            combo.currentIndexChanged.connect(self._debounce.start)
        for box in (self.dates, self.has_errors, self.pinned, self.reasoning):
            box.toggled.connect(self._debounce.start)
        self.since.dateChanged.connect(self._debounce.start)
        self.until.dateChanged.connect(self._debounce.start)
        self.view.activated.connect(self._on_view_activated)
        self.view.clicked.connect(self._on_view_activated)

    # --- the query --------------------------------------------------------------------------------

    def query(self) -> SearchQuery:
        since = until = None
        if self.dates.isChecked():
            since = datetime.combine(self.since.date().toPython(), time.min).timestamp()
            until = datetime.combine(self.until.date().toPython(), time.max).timestamp()
        return SearchQuery(
            text=self.field.text(),
            reasoning=self.reasoning.isChecked(),
            model=self.model_filter.currentData() or "",
            account_id=self.account_filter.currentData() or "",
            since=since,
            until=until,
            has_errors=self.has_errors.isChecked(),
            pinned=self.pinned.isChecked(),
            tag=self.tag_filter.currentData() or "",
        )

    async def search(self) -> None:
        """Show the first page of what the field and filters find (or hand the room back to the list)."""
        self._debounce.stop()
        query = self.query()
        if query.empty != (not self._active):
            self._active = not query.empty
            self.view.setVisible(self._active)
            self.active_changed.emit(self._active)
        if not await self.results.show(query):
            return  # the newer query says what it found
        problem = self.results.problem
        if problem is not None:
            self._say(f"{problem.message} {problem.action}")
        elif self._active and not self.results.rowCount():
            self._say("Nothing found." if query.text.strip() else "No conversation matches these filters.")
        else:
            self._say("")
        self.searched.emit()

    async def reload_choices(self) -> None:
        """Fill the model, account and tag filters with what the history holds."""
        try:
            models, accounts, tags = await self._store.search_choices()
        except StorageFailed:
            return
        for combo, values, label in (
            (self.model_filter, models, str),
            (self.account_filter, accounts, self._account_label),
            (self.tag_filter, tags, str),
        ):
            chosen = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for value in values:
                combo.addItem(label(value), value)
            combo.setCurrentIndex(max(combo.findData(chosen), 0))
            combo.blockSignals(False)

    def clear(self) -> None:
        self.field.clear()

    # --- slots ------------------------------------------------------------------------------------

    async def _fetch(self, query: SearchQuery, limit: int, offset: int) -> list[SearchHit]:
        return await self._store.search(query, limit=limit, offset=offset)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def _on_debounce_timeout(self) -> None:
        self._spawn(self.search())

    def _on_filters_toggled(self, shown: bool) -> None:
        self.filters.setVisible(shown)
        if shown:
            self._spawn(self.reload_choices())

    def _on_field_return_pressed(self) -> None:
        if self._debounce.isActive():  # typed faster than the pause: search first, then open
            self._spawn(self._search_and_open())
            return
        index = self.view.currentIndex()
        if not index.isValid():
            index = self.results.index(0)
        if index.isValid():
            self._on_view_activated(index)

    async def _search_and_open(self) -> None:
        await self.search()
        if (hit := self.results.hit_at(0)) is not None:
            self.hit_opened.emit(self.query(), hit)

    def _on_view_activated(self, index: QModelIndex) -> None:
        hit = index.data(HIT_ROLE)
        if hit is not None:
            self.hit_opened.emit(self.query(), hit)
