"""The organisation part of the Usage pane: what the providers report beside the ledger, and their keys.

Shown for accounts that hold an organisation admin key. Admin calls are network calls with rate
limits, so they run when the panel is first shown, when the period changes and on Refresh, never
after each reply; they run as owned tasks, off the GUI thread's way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QItemSelection, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import DomainError
from desktop_app.domain.org_usage import OrgKey
from desktop_app.services.accounts.org_usage import OrgUsageService
from desktop_app.ui.common.dialogs import ask_to_confirm
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.theme import set_tone
from desktop_app.ui.usage.model import SortRole
from desktop_app.ui.usage.org_model import PROVIDER_NAMES, ComparisonModel, CostModel, KeysModel

NO_ADMIN_KEY = (
    "Add an organisation admin key to an Anthropic or OpenAI account (Accounts) to see the provider's own "
    "usage, costs and API keys here."
)
_NO_MAXIMUM = 16_777_215  # Qt's QWIDGETSIZE_MAX
OPENAI_CANNOT_DISABLE = (
    "OpenAI's API can only delete a project key, not switch it off, and ModelDesk does not delete keys: "
    "use the OpenAI dashboard for that."
)


def _table(name: str, model: object) -> QTableView:
    view = QTableView(objectName=name)
    proxy = QSortFilterProxyModel(view)
    proxy.setSourceModel(model)  # type: ignore[arg-type]
    proxy.setSortRole(SortRole)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().hide()
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return view


class OrgPanel(QWidget):
    """Tabs "Provider vs ModelDesk", "Provider costs" and "API keys", a Refresh button and a status line."""

    report_loaded = Signal()
    keys_loaded = Signal()
    key_disabled = Signal(str)  # key id

    def __init__(
        self, *, org: OrgUsageService, accounts_provider: Callable[[], list[Account]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._org = org
        self._accounts_provider = accounts_provider
        self._tasks = TaskOwner("OrgPanel")
        self._generation = 0
        self._days = 7
        self.confirm_box: QMessageBox | None = None
        self.comparison = ComparisonModel(self)
        self.costs = CostModel(self)
        self.keys = KeysModel(self)
        self.comparison_view = _table("orgComparison", self.comparison)
        self.costs_view = _table("orgCosts", self.costs)
        self.keys_view = _table("orgKeys", self.keys)
        self.keys_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)

        self.title = QLabel("<b>As the providers report it</b>", objectName="orgTitle")
        self.summary_label = QLabel(objectName="orgSummary", wordWrap=True)
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.refresh_button = QPushButton("Refresh", objectName="orgRefresh", toolTip="Ask the providers again")
        self.disable_button = QPushButton(
            "Disable key…",
            objectName="disableKey",
            enabled=False,
            toolTip="Switch the selected key off at the provider",
        )
        self.key_note = QLabel(objectName="keyNote", wordWrap=True)
        self.key_note.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label = QLabel(objectName="orgStatus", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        keys_page = QWidget()
        keys_layout = QVBoxLayout(keys_page)
        keys_layout.setContentsMargins(0, 4, 0, 0)
        keys_layout.addWidget(self.keys_view, 1)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_note, 1)
        key_row.addWidget(self.disable_button)
        keys_layout.addLayout(key_row)
        self.tabs = QTabWidget(objectName="orgTabs", documentMode=True)
        self.tabs.addTab(self.comparison_view, "Provider vs ModelDesk")
        self.tabs.addTab(self.costs_view, "Provider costs")
        self.tabs.addTab(keys_page, "API keys")

        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.summary_label, 1)
        head.addStretch(0)  # keeps Refresh at the right while the summary is hidden
        head.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status_label)
        self._show_tables(False)  # until a report says some account has an admin key

        self.refresh_button.clicked.connect(self._on_refresh_clicked)
        self.disable_button.clicked.connect(self._on_disable_clicked)
        self.keys_view.selectionModel().selectionChanged.connect(self._on_keys_selection_changed)

    # --- slots ---------------------------------------------------------------------------------

    def _on_refresh_clicked(self) -> None:
        self.request_reload(self._days)

    def _on_disable_clicked(self) -> None:
        self._tasks.spawn(self.disable_selected())

    def _on_keys_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_key_actions()

    # --- public --------------------------------------------------------------------------------

    def request_reload(self, days: int) -> None:
        self._tasks.spawn(self.reload(days))

    async def reload(self, days: int) -> None:
        """Ask every admin account's provider for the period's usage and costs, and the key list."""
        self._days = days
        self._generation += 1
        generation = self._generation
        self.refresh_button.setEnabled(False)
        self._show_status("Asking the providers…", "busy")
        try:
            report = await self._org.report(days)
        finally:
            if generation == self._generation:
                self.refresh_button.setEnabled(True)
        if generation != self._generation:
            return
        labels = {a.id: a.label for a in self._accounts_provider()}
        self.comparison.set_rows(report.rows, labels=labels)
        self.costs.set_rows(report.costs, labels=labels)
        self.keys.set_rows(report.keys, used_by=report.used_by, labels=labels)
        self._show_tables(bool(report.admin_accounts))
        self.summary_label.setText(self._summary(report.rows, report.costs) if report.admin_accounts else "")
        problems = list(dict.fromkeys(report.problems))
        if not report.admin_accounts:
            self._show_status(NO_ADMIN_KEY, None)
        elif problems:
            self._show_status(" ".join(problems), "error")
        else:
            self._show_status("", None)
        self._update_key_actions()
        self.report_loaded.emit()
        self.keys_loaded.emit()

    def selected_key(self) -> OrgKey | None:
        rows = self.keys_view.selectionModel().selectedRows()
        if not rows:
            return None
        proxy = self.keys_view.model()
        assert isinstance(proxy, QSortFilterProxyModel)
        return self.keys.row_at(proxy.mapToSource(rows[0]).row())

    def select_key(self, key_id: str) -> None:
        proxy = self.keys_view.model()
        for row in range(proxy.rowCount()):
            index = proxy.index(row, 0)
            key = self.keys.row_at(proxy.mapToSource(index).row())  # type: ignore[attr-defined]
            if key is not None and key.id == key_id:
                self.keys_view.selectRow(row)
                return

    def disable_question(self, key: OrgKey) -> tuple[str, str]:
        """The question and what it will do, exactly."""
        labels = {a.id: a.label for a in self._accounts_provider()}
        users = [labels.get(i, i) for i in self.keys.used_by(key)]
        where = f"workspace {key.scope_id}" if key.scope_id else "the default workspace"
        text = f"Disable the API key “{key.name or key.id}” ({key.hint}) in {where}?"
        informative = (
            "ModelDesk will set its status to inactive at Anthropic. Every request made with this key, by "
            "anyone, is then refused until it is activated again in the Anthropic Console. The key is not deleted."
        )
        if users:
            informative += f" ModelDesk accounts using it will stop working: {', '.join(users)}."
        return text, informative

    async def disable_selected(self, confirmed: bool = False) -> OrgKey | None:
        """Switch the selected key off; unconfirmed, this only asks and the answer does it."""
        key = self.selected_key()
        if key is None or key.provider_id != "anthropic" or key.status != "active":
            return None
        if not confirmed:
            if self.confirm_box is None:
                text, informative = self.disable_question(key)
                self.confirm_box = ask_to_confirm(
                    self,
                    title="Disable API key",
                    text=text,
                    informative=informative,
                    action="Disable key",
                    on_answer=lambda yes: self._on_confirm_finished(yes, key.id),
                    object_name="disableKeyQuestion",
                )
            return None
        self.disable_button.setEnabled(False)
        try:
            updated = await self._org.disable_key(key)
        except DomainError as exc:
            self._show_status(f"The key was not disabled: {exc.message} {exc.action}".strip(), "error")
            self._update_key_actions()
            return None
        self._show_status(f"Disabled the key “{updated.name or updated.id}”: its status is now {updated.status}.", "ok")
        rows = [
            replace(updated, admin_account_id=k.admin_account_id) if k.id == updated.id else k for k in self.keys.rows()
        ]
        used_by = {k.id: self.keys.used_by(k) for k in rows}
        self.keys.set_rows(rows, used_by=used_by, labels={a.id: a.label for a in self._accounts_provider()})
        self.select_key(updated.id)
        self.key_disabled.emit(updated.id)
        return updated

    async def aclose(self) -> None:
        if self.confirm_box is not None:
            self.confirm_box.reject()
        await self._tasks.aclose()

    # --- internals -----------------------------------------------------------------------------

    def _on_confirm_finished(self, confirmed: bool, key_id: str) -> None:
        self.confirm_box = None
        selected = self.selected_key()
        if confirmed and selected is not None and selected.id == key_id:
            self._tasks.spawn(self.disable_selected(True))

    def _update_key_actions(self) -> None:
        key = self.selected_key()
        note = ""
        if key is not None and key.provider_id == "openai":
            note = OPENAI_CANNOT_DISABLE
        elif key is not None and key.status != "active":
            note = f"This key is {key.status}."
        self.key_note.setText(note)
        self.disable_button.setEnabled(key is not None and key.provider_id == "anthropic" and key.status == "active")

    def _summary(self, rows: list, costs: list) -> str:
        outside = sum(r.difference for r in rows if r.difference > 0)
        billed = sum(c.amount_usd for _a, c in costs)
        providers = sorted({PROVIDER_NAMES.get(r.provider_id, r.provider_id) for r in rows})
        return (
            f"{', '.join(providers) or 'No usage'}: ${billed:,.2f} billed in the period; "
            f"{outside:,} tokens used with these keys outside ModelDesk."
        )

    def _show_tables(self, shown: bool) -> None:
        """Without an admin key the panel is one line that says how to get one, not empty tables."""
        self.tabs.setVisible(shown)
        self.summary_label.setVisible(shown)
        self._fit()

    def _fit(self) -> None:
        layout = self.layout()
        height = layout.totalMinimumSize().height() if layout is not None else 0
        self.setMaximumHeight(_NO_MAXIMUM if self.tabs.isVisibleTo(self) else max(height, 1))

    def _show_status(self, text: str, tone: str | None) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))
        set_tone(self.status_label, tone)
        self._fit()
