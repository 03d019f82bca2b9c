"""The Pools tab of the Accounts pane: several accounts of one provider offered as one.

A pool is listed on the left; on the right its name, provider, strategy and its members, ticked
and put in order. The pool list is a Qt model over the service's pools; the member list is form
state (what the user is composing), so it is a plain list widget until Save.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool, Strategy, new_pool_id
from desktop_app.domain.providers import PROVIDERS
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.ui.accounts.editor_base import ListEditor, move_current_row, up_down_buttons
from desktop_app.ui.accounts.form import bold_title, first_problem, row
from desktop_app.ui.accounts.model import (
    DetailRole,
    ItemListModel,
    colour_icon,
    sync_rows,
)
from desktop_app.ui.common.events import follow
from desktop_app.ui.theme import set_tone

PoolIdRole = Qt.ItemDataRole.UserRole
MemberIdRole = Qt.ItemDataRole.UserRole

STRATEGY_NAMES = {Strategy.FAILOVER: "In order (failover)", Strategy.ROUND_ROBIN: "Round-robin"}
STRATEGY_HINTS = {
    Strategy.FAILOVER: "Every request goes to the first ticked account; the next one answers when it is "
    "rate-limited, failing or disabled.",
    Strategy.ROUND_ROBIN: "Requests take turns over the ticked accounts, spreading the load; the others "
    "stand in when one cannot answer.",
}
EMPTY_POOLS_HINT = (
    "No pools yet. A pool offers several accounts of one provider as one: when one is rate-limited, the next answers."
)
NO_ACCOUNTS_HINT = "A pool is made of accounts of one provider; add an account first."
NO_MEMBERS = "tick at least one account for the pool"


def pool_detail(pool: Pool) -> str:
    count = len(pool.account_ids)
    return (
        f"{PROVIDERS[pool.provider_id].name} · {STRATEGY_NAMES[pool.strategy]} · "
        f"{count} account{'' if count == 1 else 's'}"
    )


class PoolListModel(ItemListModel):
    """One row per pool, in the order the service keeps them."""

    ID_ROLE = PoolIdRole
    ROLE_NAMES: ClassVar[dict[int, bytes]] = {PoolIdRole: b"poolId", DetailRole: b"detail"}

    def __init__(self, *, accounts: AccountService, parent: Any = None) -> None:
        super().__init__(accounts.pools, parent)
        self._service = accounts
        self._rows: list[Pool]
        follow(self, accounts.on_accounts_changed, self._on_accounts_changed)

    def detail(self, item: Pool) -> str:
        return pool_detail(item)

    def pool_at(self, row_: int) -> Pool | None:
        return self.item_at(row_)

    def _on_accounts_changed(self) -> None:
        sync_rows(self, self._rows, self._service.pools)


class PoolsEditor(ListEditor):
    pool_saved = Signal(str)  # pool id
    pool_removed = Signal(str)  # pool id

    NOUN = "pool"
    REMOVAL_NOTE = "Its accounts and their keys stay."

    def __init__(self, *, accounts: AccountService, parent: QWidget | None = None) -> None:
        super().__init__(task_owner="PoolsEditor", parent=parent)
        self._accounts = accounts
        self.model = PoolListModel(accounts=accounts, parent=self)
        self._build()
        self._connect()
        follow(self, accounts.on_accounts_changed, self._on_accounts_changed)
        self._show_first()

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self._build_list(object_name="poolList", hint=EMPTY_POOLS_HINT, hint_name="emptyPoolsHint", status_line=False)
        self.new_button = QPushButton("New pool", objectName="newPool")
        self.remove_button = QPushButton("Remove", objectName="removePool")

        self.form_title = bold_title(QLabel(objectName="poolTitle"))
        self.no_accounts_hint = QLabel(
            NO_ACCOUNTS_HINT,
            objectName="noAccountsHint",
            wordWrap=True,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        self.name_edit = QLineEdit(objectName="poolName", placeholderText="Claude, shared")
        self.provider_combo = QComboBox(objectName="poolProvider")
        self.strategy_combo = QComboBox(objectName="poolStrategy")
        for strategy, name in STRATEGY_NAMES.items():
            self.strategy_combo.addItem(name, strategy.value)  # Qt keeps it as a plain str
        self.strategy_hint = QLabel(
            objectName="strategyHint", wordWrap=True, foregroundRole=QPalette.ColorRole.PlaceholderText
        )
        self.members_list = QListWidget(objectName="poolMembers")
        self.members_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.members_list.setSpacing(2)
        self.member_up_button = QPushButton(
            "Move up", objectName="memberUp", toolTip="Tried earlier (in order) or sooner in the rotation"
        )
        self.member_down_button = QPushButton("Move down", objectName="memberDown")
        member_buttons = QVBoxLayout()
        member_buttons.setContentsMargins(0, 0, 0, 0)
        member_buttons.addWidget(self.member_up_button)
        member_buttons.addWidget(self.member_down_button)
        member_buttons.addStretch(1)
        self.members_hint = QLabel(
            "Ticked accounts belong to the pool, in the order shown.",
            objectName="membersHint",
            wordWrap=True,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        member_list_row = QHBoxLayout()
        member_list_row.setContentsMargins(0, 0, 0, 0)
        member_list_row.addWidget(self.members_list, 1)
        member_list_row.addLayout(member_buttons)
        members = QVBoxLayout()
        members.setContentsMargins(0, 0, 0, 0)
        members.setSpacing(4)
        members.addLayout(member_list_row)
        members.addWidget(self.members_hint)
        self.fields = QFormLayout()
        self.fields.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.fields.addRow("Name", self.name_edit)
        self.fields.addRow("Provider", self.provider_combo)
        strategy = QVBoxLayout()
        strategy.setContentsMargins(0, 0, 0, 0)
        strategy.setSpacing(4)
        strategy.addWidget(self.strategy_combo)
        strategy.addWidget(self.strategy_hint)
        self.fields.addRow("Strategy", strategy)
        self.fields.addRow("Accounts", members)
        self.save_button = QPushButton("Save", objectName="savePool", default=True)
        self._name_field, self._save_field = self.name_edit, self.save_button
        self.status_label = QLabel(objectName="poolStatus", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        form_box = QWidget()
        form_layout = QVBoxLayout(form_box)
        form_layout.setContentsMargins(12, 0, 0, 0)
        form_layout.addWidget(self.form_title)
        form_layout.addWidget(self.no_accounts_hint)
        form_layout.addSpacing(4)
        form_layout.addLayout(self.fields)
        form_layout.addLayout(row(self.save_button, None))
        form_layout.addWidget(self.status_label)
        form_layout.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._split(form_box, row(self.new_button, self.remove_button, None)))

    def _connect(self) -> None:
        self._connect_list()
        self.new_button.clicked.connect(self.start_new_pool)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.name_edit.returnPressed.connect(self._on_save_clicked)
        self.provider_combo.currentIndexChanged.connect(self._on_provider_changed)
        self.strategy_combo.currentIndexChanged.connect(self._on_strategy_changed)
        self.members_list.currentRowChanged.connect(self._update_member_buttons)
        self.member_up_button.clicked.connect(self._on_member_up_clicked)
        self.member_down_button.clicked.connect(self._on_member_down_clicked)

    # --- slots ---------------------------------------------------------------------------------

    def _on_save_clicked(self) -> None:
        self._tasks.spawn(self.save_current_pool())

    def _on_remove_clicked(self) -> None:
        self._tasks.spawn(self.remove_selected_pool(False))

    def _on_member_up_clicked(self) -> None:
        self.move_member(-1)

    def _on_member_down_clicked(self) -> None:
        self.move_member(1)

    # --- public --------------------------------------------------------------------------------

    def select_pool(self, pool_id: str) -> None:
        self._select(pool_id)

    def start_new_pool(self) -> None:
        """Empty the form for a new pool (what "New pool" does)."""
        self._start_new()

    def member_ids(self) -> list[str]:
        """The ticked accounts, in the order shown."""
        return [item.data(MemberIdRole) for item in self._member_items() if item.checkState() == Qt.CheckState.Checked]

    def member_item(self, account_id: str) -> QListWidgetItem | None:
        return next((item for item in self._member_items() if item.data(MemberIdRole) == account_id), None)

    def move_member(self, delta: int) -> None:
        """Move the current member `delta` places (negative: up); it stays current."""
        move_current_row(self.members_list, delta)

    async def save_current_pool(self) -> Pool | None:
        """Save the form as a pool; None (and one sentence in the status line) when it is not acceptable."""
        provider_id = self.provider_combo.currentData()
        if provider_id is None:
            self._show_status(f"Not saved: {NO_ACCOUNTS_HINT[0].lower()}{NO_ACCOUNTS_HINT[1:]}", "error")
            return None
        members = self.member_ids()
        try:
            pool = Pool(
                id=self._editing_id or new_pool_id(),
                label=self.name_edit.text(),
                provider_id=provider_id,
                account_ids=tuple(members),
                strategy=Strategy(self.strategy_combo.currentData()),
            )
        except ValidationError as exc:
            self._show_status(f"Not saved: {first_problem(exc)}.", "error")
            return None
        if not members:
            self._show_status(f"Not saved: {NO_MEMBERS}.", "error")
            return None
        try:
            if not await self._write(self._accounts.save_pool(pool)):
                return None
        except ValueError as exc:  # the service's own objection, e.g. a member of another provider
            message = str(exc).rstrip(".")
            self._show_status(f"Not saved: {message[:1].lower()}{message[1:]}.", "error")
            return None
        if self._editing_id == pool.id:
            self.form_title.setText(pool.label)
        else:
            self.select_pool(pool.id)
        self._show_status(f"Saved pool “{pool.label}”.", None)
        self.pool_saved.emit(pool.id)
        return pool

    async def remove_selected_pool(self, confirmed: bool = False) -> bool:
        """Remove the pool in the form. Unconfirmed, this only asks; the answer removes it."""
        return await self._remove_current(confirmed)

    # --- the form ------------------------------------------------------------------------------

    def _accounts_of(self, provider_id: str | None) -> list[Account]:
        return [a for a in self._accounts.accounts if a.provider_id == provider_id]

    def _find(self, item_id: str) -> Pool | None:
        return self._accounts.pool(item_id)

    async def _delete(self, pool: Pool) -> None:
        await self._accounts.remove_pool(pool.id)

    def _announce_removed(self, pool: Pool) -> None:
        self._show_status(f"Removed pool “{pool.label}”; its accounts stay.", None)
        self.pool_removed.emit(pool.id)

    def _show_item(self, pool: Pool | None) -> None:
        self.name_edit.setText(pool.label if pool is not None else "")
        self._fill_providers(pool.provider_id if pool is not None else None)
        self.strategy_combo.setCurrentIndex(
            self.strategy_combo.findData((pool.strategy if pool is not None else Strategy.FAILOVER).value)
        )
        if pool is not None:
            self._fill_members([(account_id, True) for account_id in pool.account_ids])
        else:
            self._fill_members(self._default_members())
        self.form_title.setText(pool.label if pool is not None else "New pool")
        self._on_strategy_changed()
        self._show_status("", None)

    def _fill_providers(self, keep: str | None) -> None:
        """The providers that have an account (plus `keep`, a loaded pool's, even if it has none now)."""
        have = {a.provider_id for a in self._accounts.accounts if a.provider.chat}  # a token for downloads is no pool
        current = keep or self.provider_combo.currentData()
        self.provider_combo.blockSignals(True)
        self.provider_combo.clear()
        for provider in PROVIDERS.values():
            if provider.id in have or provider.id == keep:
                self.provider_combo.addItem(provider.name, provider.id)
        index = self.provider_combo.findData(current)
        self.provider_combo.setCurrentIndex(max(index, 0))
        self.provider_combo.blockSignals(False)
        usable = self.provider_combo.count() > 0
        self.no_accounts_hint.setVisible(not usable)
        for widget in (self.name_edit, self.provider_combo, self.strategy_combo, self.members_list, self.save_button):
            widget.setEnabled(usable)

    def _default_members(self) -> list[tuple[str, bool]]:
        """A new pool starts with every enabled account of its provider ticked."""
        return [(a.id, a.enabled) for a in self._accounts_of(self.provider_combo.currentData())]

    def _fill_members(self, state: list[tuple[str, bool]]) -> None:
        """Members as (account id, ticked) in order; the provider's other accounts follow, unticked."""
        provider_id = self.provider_combo.currentData()
        accounts = {a.id: a for a in self._accounts_of(provider_id)}
        listed = [(account_id, ticked) for account_id, ticked in state if account_id in accounts]
        seen = {account_id for account_id, _ in listed}
        listed += [(account_id, False) for account_id in accounts if account_id not in seen]
        current = self.members_list.currentItem()
        current_id = current.data(MemberIdRole) if current is not None else None
        self.members_list.clear()
        for account_id, ticked in listed:
            account = accounts[account_id]
            item = QListWidgetItem(
                colour_icon(account.colour), account.label if account.enabled else f"{account.label} (disabled)"
            )
            item.setData(MemberIdRole, account_id)
            item.setToolTip(f"{account.provider.name} · {account.effective_base_url}")
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemNeverHasChildren
            )
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.members_list.addItem(item)
            if account_id == current_id:
                self.members_list.setCurrentItem(item)
        self._fit_members_list()
        self._update_member_buttons()

    def _fit_members_list(self) -> None:
        """As tall as its accounts (three to eight rows), so a short list leaves no well of white."""
        rows = min(max(self.members_list.count(), 3), 8)
        height = self.members_list.sizeHintForRow(0) if self.members_list.count() else -1
        if height <= 0:
            height = self.members_list.fontMetrics().height() + 6
        frame = 2 * self.members_list.frameWidth()
        self.members_list.setFixedHeight(rows * (height + 2 * self.members_list.spacing()) + frame + 2)

    def _member_items(self) -> list[QListWidgetItem]:
        return [self.members_list.item(r) for r in range(self.members_list.count())]

    def _member_state(self) -> list[tuple[str, bool]]:
        return [(item.data(MemberIdRole), item.checkState() == Qt.CheckState.Checked) for item in self._member_items()]

    def _show_status(self, text: str, tone: str | None) -> None:
        self.status_label.setText(text)
        set_tone(self.status_label, tone)

    # --- reactions -----------------------------------------------------------------------------

    def _on_accounts_changed(self) -> None:
        # Accounts were added, renamed or removed (or a pool saved): keep what the user is composing.
        state = self._member_state()
        self._fill_providers(self.provider_combo.currentData())
        self._fill_members(state if state or self._editing_id else self._default_members())

    def _on_provider_changed(self, _index: int) -> None:
        # Only the user's choice gets here: refilling the combo blocks its signals.
        self._fill_members(self._default_members())

    def _on_strategy_changed(self) -> None:
        self.strategy_hint.setText(STRATEGY_HINTS[Strategy(self.strategy_combo.currentData())])

    def _update_member_buttons(self) -> None:
        up_down_buttons(self.members_list, self.member_up_button, self.member_down_button)
