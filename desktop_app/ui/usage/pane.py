"""The Usage pane: today's totals and budgets, a chart per day, the daily table, and CSV export.

One query per reload (the daily totals of the chosen period, all accounts and models); the
account and model filters then work on those rows without going back to the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QCloseEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.usage import BudgetLevel, DailyUsage, budget_level, merge_models
from desktop_app.services.accounts.org_usage import OrgUsageService
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat.conversations import StoreClosed
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.theme import banner_style, set_themed_style_sheet, set_tone
from desktop_app.ui.usage.chart import REMOVED_LABEL, ChartMetric, DailyChart, Series, account_series
from desktop_app.ui.usage.model import DATE, SortRole, UsageTableModel
from desktop_app.ui.usage.org import OrgPanel

EMPTY_HINT = "No requests yet: usage appears here after your first chat."
ALL_ACCOUNTS = "All accounts"
ALL_MODELS = "All models"
RANGES = ((7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days"))
DEFAULT_DAYS = 30


def today_summary(rows: Sequence[DailyUsage], today: date) -> str:
    """The line above the chart, e.g. “Today: 12,345 tokens, $0.0123 across 3 accounts”."""
    day = today.isoformat()
    todays = [row for row in rows if row.day == day]
    if not todays:
        return "Today: no requests yet."
    tokens = sum(row.total_tokens for row in todays)
    costs = [row.cost_usd for row in todays if row.cost_usd is not None]
    cost = f"${sum(costs):,.4f}" if costs else "cost unknown"
    accounts = len({row.account_id for row in todays})
    return f"Today: {tokens:,} tokens, {cost} across {accounts:,} account{'s' if accounts != 1 else ''}"


class UsagePane(QWidget):
    reloaded = Signal()
    chat_requested = Signal()  # the empty state's button
    export_finished = Signal(str)  # the one-sentence outcome shown under the table

    def __init__(
        self,
        *,
        usage: UsageStore,
        accounts_provider: Callable[[], list[Account]],
        org: OrgUsageService | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._usage = usage
        self._accounts_provider = accounts_provider
        self._tasks = TaskOwner("UsagePane")
        self._rows: list[DailyUsage] = []  # the period's totals, unfiltered
        self._has_history = False
        self._generation = 0  # bumped by each reload, so only the newest result is shown
        self._export_dialog: QFileDialog | None = None
        self.model = UsageTableModel(parent=self)
        self._build()
        self._connect()
        self.org_panel: OrgPanel | None = None
        if org is not None:
            self._add_org_panel(org)
        self._apply()

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.account_combo = QComboBox(objectName="accountFilter", accessibleName="Account")
        self.account_combo.addItem(ALL_ACCOUNTS, None)
        self.model_combo = QComboBox(objectName="modelFilter", accessibleName="Model")
        self.model_combo.addItem(ALL_MODELS, None)
        for combo, letters in ((self.account_combo, 12), (self.model_combo, 15)):
            # A long account or model name would otherwise push the Export button off the pane;
            # the drop-down list still shows names in full.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(letters)
        self.range_combo = QComboBox(objectName="period", accessibleName="Period")
        for days, text in RANGES:
            self.range_combo.addItem(text, days)
        self.range_combo.setCurrentIndex(self.range_combo.findData(DEFAULT_DAYS))
        self.metric_combo = QComboBox(objectName="metric", toolTip="What the bars measure")
        self.metric_combo.addItem("Tokens", ChartMetric.TOKENS.value)
        self.metric_combo.addItem("Cost", ChartMetric.COST.value)
        self.export_button = QPushButton(
            "Export CSV…", objectName="exportCsv", toolTip="Save the daily totals shown below as a CSV file"
        )
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        # No "Account:"/"Model:" labels: "All accounts" and "All models" say what each filter is,
        # and the row stays narrow enough for the smallest window.
        filters.addWidget(self.account_combo)
        filters.addWidget(self.model_combo)
        filters.addWidget(self.range_combo)
        filters.addWidget(self.metric_combo)
        filters.addStretch(1)
        filters.addWidget(self.export_button)

        self.summary_label = QLabel(objectName="todaySummary")
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.budget_label = QLabel(objectName="budgetNotice", wordWrap=True)
        set_themed_style_sheet(self.budget_label, banner_style("QLabel"))
        self.budget_label.setTextFormat(Qt.TextFormat.PlainText)
        self.budget_label.hide()

        self.chart = DailyChart()
        self.table_view = QTableView(objectName="usageTable")
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self.model)
        self._proxy.setSortRole(SortRole)
        self.table_view.setModel(self._proxy)
        self.table_view.setSortingEnabled(True)
        self.table_view.sortByColumn(DATE, Qt.SortOrder.DescendingOrder)
        self.table_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table_view.setAlternatingRowColors(True)
        self.table_view.setWordWrap(False)
        self.table_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # model names differ at the end
        self.table_view.verticalHeader().hide()
        header = self.table_view.horizontalHeader()
        # Every column as wide as its contents, the spare room to the last: nothing is cut short
        # unless the pane is narrower than the table, and then it scrolls.
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        header.setMaximumSectionSize(self.fontMetrics().averageCharWidth() * 40)
        content = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        content.addWidget(self.chart)
        content.addWidget(self.table_view)
        content.setStretchFactor(0, 3)
        content.setStretchFactor(1, 2)

        # The hint sits on the same framed, base-coloured panel as the chart, so the area keeps its shape.
        self.empty_hint = QLabel(
            EMPTY_HINT,
            objectName="emptyHint",
            wordWrap=True,
            margin=24,
            alignment=Qt.AlignmentFlag.AlignCenter,
            frameShape=QFrame.Shape.StyledPanel,
            autoFillBackground=True,
            backgroundRole=QPalette.ColorRole.Base,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        self.empty_button = QPushButton("Start a chat")
        self.empty_button.clicked.connect(self.chat_requested)
        empty_panel = QWidget()
        empty_layout = QVBoxLayout(empty_panel)
        empty_layout.setContentsMargins(0, 0, 0, 0)
        empty_layout.addWidget(self.empty_hint, 1)
        empty_layout.addWidget(self.empty_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self._empty_panel = empty_panel
        self._stack = QStackedWidget()
        self._stack.addWidget(content)
        self._stack.addWidget(empty_panel)
        self._content = content

        self.status_label = QLabel(objectName="status", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.budget_label)
        layout.addWidget(self._stack, 1)
        layout.addWidget(self.status_label)

    def _connect(self) -> None:
        self.account_combo.currentIndexChanged.connect(self._on_filter_changed)
        self.model_combo.currentIndexChanged.connect(self._on_filter_changed)
        self.range_combo.currentIndexChanged.connect(self._on_range_changed)
        self.metric_combo.currentIndexChanged.connect(self._on_metric_changed)
        self.export_button.clicked.connect(self._on_export_clicked)

    # --- slots: one line each, the work is in the async methods below ---------------------------

    def _on_filter_changed(self, _index: int) -> None:
        self._apply()

    def _on_range_changed(self, _index: int) -> None:
        self._tasks.spawn(self.reload())

    def _on_metric_changed(self, _index: int) -> None:
        self.chart.set_metric(ChartMetric(self.metric_combo.currentData()))

    def _on_export_file_selected(self, path: str) -> None:
        self._tasks.spawn(self.export_to(Path(path)))

    # --- public --------------------------------------------------------------------------------

    @property
    def days(self) -> int:
        """How many days (today included) the chart and table cover."""
        return int(self.range_combo.currentData())

    @property
    def account_filter(self) -> str | None:
        return self.account_combo.currentData()

    @property
    def model_filter(self) -> str | None:
        return self.model_combo.currentData()

    @property
    def export_dialog(self) -> QFileDialog | None:
        """The open "Export CSV" file dialog, if any."""
        return self._export_dialog

    @property
    def showing_empty_state(self) -> bool:
        return self._stack.currentWidget() is self._empty_panel

    def set_filters(self, *, account_id: str | None = None, model: str | None = None) -> None:
        """Choose the account and model shown (None: all); ids not offered are ignored."""
        for combo, value in ((self.account_combo, account_id), (self.model_combo, model)):
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)

    async def reload(self) -> None:
        """Re-read the period's totals (one query) and the accounts; cheap enough after every reply."""
        self._generation += 1
        generation = self._generation
        days = self.days
        try:
            rows = await self._usage.daily(days=days)
            has_history = bool(rows) or bool(await self._usage.records(limit=1))
        except (StoreClosed, StorageFailed):
            return  # quitting (the pane is about to go too), or the window's banner says why
        if generation != self._generation:
            return
        self._rows = rows
        self._has_history = has_history
        self._apply()
        self.reloaded.emit()

    async def export_to(self, path: Path) -> int | None:
        """Write what the filters show (all of the period) as CSV; the row count, or None on failure."""
        labels = {account.id: account.label for account in self._accounts_provider()}
        self.export_button.setEnabled(False)
        try:
            count = await self._usage.export_csv(
                Path(path), labels=labels, account_id=self.account_filter, model=self.model_filter, days=self.days
            )
        except OSError as exc:
            self._show_status(f"Not exported: {path} could not be written ({exc.strerror or exc}).", "error")
            return None
        finally:
            self.export_button.setEnabled(True)
        self._show_status(f"Exported {count:,} row{'s' if count != 1 else ''} to {path}.", None)
        return count

    async def aclose(self) -> None:
        if self._export_dialog is not None:
            self._export_dialog.reject()
        if self.org_panel is not None:
            await self.org_panel.aclose()
        await self._tasks.aclose()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._tasks.cancel_all()
        super().closeEvent(event)

    # --- showing the rows ----------------------------------------------------------------------

    def _apply(self) -> None:
        """Fill the filters, summary, chart and table from the rows of the last reload."""
        accounts = self._accounts_provider()
        series = account_series(accounts, {row.account_id for row in self._rows})
        self._refresh_filters(accounts, series)
        account_id, model = self.account_filter, self.model_filter
        rows = [
            row
            for row in self._rows
            if (account_id is None or row.account_id == account_id) and (model is None or row.model == model)
        ]
        known = {account.id for account in accounts}
        labels = {s.account_id: s.label for s in series if s.account_id in known}
        self.model.set_rows(rows, labels=labels, colours={s.account_id: s.colour for s in series})
        period = self.range_combo.currentText().lower()
        filtered = account_id is not None or model is not None
        empty = f"No requests match these filters in the {period}." if filtered else f"No requests in the {period}."
        self.chart.set_data(merge_models(rows), series, days=self.days, empty_text=empty)
        self.summary_label.setText(today_summary(self._rows, date.today()))
        self._show_budgets(accounts)
        self._stack.setCurrentWidget(self._content if self._has_history else self._empty_panel)
        self.export_button.setEnabled(self._has_history)

    def _refresh_filters(self, accounts: Sequence[Account], series: Sequence[Series]) -> None:
        known = {account.id for account in accounts}
        account_items: list[tuple[str, str | None]] = [(ALL_ACCOUNTS, None)]
        account_items += [
            (s.label if s.account_id in known else f"{REMOVED_LABEL} {s.account_id}", s.account_id) for s in series
        ]
        models = sorted({row.model for row in self._rows})
        current_model = self.model_filter
        if current_model is not None and current_model not in models:
            models.append(current_model)  # still chosen: keep it rather than silently show everything
        model_items: list[tuple[str, str | None]] = [(ALL_MODELS, None), *((m, m) for m in models)]
        for combo, items in ((self.account_combo, account_items), (self.model_combo, model_items)):
            if [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())] == items:
                continue
            current = combo.currentData()
            combo.blockSignals(True)
            try:
                combo.clear()
                for text, data in items:
                    combo.addItem(text, data)
                combo.setCurrentIndex(max(0, combo.findData(current)))
            finally:
                combo.blockSignals(False)

    def _show_budgets(self, accounts: Sequence[Account]) -> None:
        day = date.today().isoformat()
        messages: list[str] = []
        for account in accounts:
            if not (account.daily_budget_tokens or account.daily_budget_usd):
                continue
            todays = [row for row in self._rows if row.day == day and row.account_id == account.id]
            level, message = budget_level(
                sum(row.total_tokens for row in todays), sum(row.cost_usd or 0.0 for row in todays), account
            )
            if level is not BudgetLevel.OK:
                messages.append(message)
        self.budget_label.setText("\n".join(messages))
        self.budget_label.setVisible(bool(messages))

    def _show_status(self, text: str, tone: str | None) -> None:
        self.status_label.setText(text)
        set_tone(self.status_label, tone)
        self.export_finished.emit(text)

    # --- export dialog -------------------------------------------------------------------------

    def _on_export_clicked(self) -> None:
        if self._export_dialog is not None:
            self._export_dialog.activateWindow()
            return
        suggested = Path.home() / f"modeldesk-usage-{date.today().isoformat()}.csv"
        dialog = QFileDialog(self, "Export usage as CSV", str(suggested), "CSV files (*.csv);;All files (*)")
        dialog.setObjectName("exportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self._on_export_file_selected)
        dialog.finished.connect(self._on_export_dialog_finished)
        self._export_dialog = dialog
        dialog.open()

    def _on_export_dialog_finished(self, _result: int) -> None:
        self._export_dialog = None

    # --- the providers' own figures ----------------------------------------------------------------

    def _add_org_panel(self, org: OrgUsageService) -> None:
        """Put the providers' figures under the ledger's, in a splitter; the period drives both."""
        panel = OrgPanel(org=org, accounts_provider=self._accounts_provider)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        index = layout.indexOf(self._stack)
        layout.removeWidget(self._stack)
        split = QSplitter(Qt.Orientation.Vertical, objectName="orgSplit", childrenCollapsible=False)
        split.addWidget(self._stack)
        split.addWidget(panel)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.insertWidget(index, split, 1)
        self.range_combo.currentIndexChanged.connect(self._on_range_changed_for_org)
        panel.report_loaded.connect(self._on_org_report_loaded)
        self.org_panel = panel
        self._org_split = split
        self._org_sized = False

    def _on_org_report_loaded(self) -> None:
        # The panel was one line until an admin key showed up: give its tables their share once.
        panel = self.org_panel
        if panel is not None and not self._org_sized and panel.tabs.isVisibleTo(panel):
            self._org_sized = True
            total = sum(self._org_split.sizes())
            self._org_split.setSizes([total * 11 // 20, total - total * 11 // 20])

    def _on_range_changed_for_org(self, _index: int) -> None:
        if self.org_panel is not None:
            self.org_panel.request_reload(self.days)
