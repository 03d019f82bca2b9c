"""The Accounts pane: the list of accounts on the left, the selected (or new) one's form on the right,
a second tab for pools and a third for routes.

Keys only ever enter the key field by the user typing or pasting them: a stored key is never
read back into a widget, so "Show" can only reveal what the user just typed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import Account, new_account_id
from desktop_app.domain.providers import Provider, key_prefix_warning
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import CheckResult, CheckStatus
from desktop_app.services.accounts.org_usage import OrgUsageService
from desktop_app.ui.accounts.admin_key import AdminKeyField
from desktop_app.ui.accounts.editor_base import ListEditor
from desktop_app.ui.accounts.form import (
    STORED_KEY_PLACEHOLDER,
    AccountForm,
    FormProblem,
    row,
)
from desktop_app.ui.accounts.model import AccountListModel
from desktop_app.ui.accounts.pools import PoolsEditor
from desktop_app.ui.accounts.routes import RoutesEditor
from desktop_app.ui.theme import banner_style, set_themed_style_sheet

__all__ = ["EMPTY_HINT", "STORED_KEY_PLACEHOLDER", "AccountsPane"]

log = logging.getLogger(__name__)

EMPTY_HINT = "Add an account to chat with a cloud or local model."


def _action_button(action: QAction, object_name: str) -> QPushButton:
    """A push button that mirrors `action` (text, tooltip, enabled) and triggers it."""
    button = QPushButton(action.text(), objectName=object_name, toolTip=action.toolTip(), enabled=action.isEnabled())

    def follow() -> None:
        button.setText(action.text())
        button.setEnabled(action.isEnabled())

    action.changed.connect(follow)
    button.clicked.connect(action.trigger)
    return button


class AccountsPane(ListEditor):
    """Over 30 methods on purpose: each list action is a one-line slot over an async method tests await."""

    account_saved = Signal(str)  # account id (a duplicate is announced this way too)
    account_removed = Signal(str)  # account id
    check_finished = Signal(str, str)  # CheckStatus value, one-sentence message

    NOUN = "account"
    REMOVAL_NOTE = "Its stored key is deleted too."

    def __init__(
        self, *, accounts: AccountService, org: OrgUsageService | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(task_owner="AccountsPane", parent=parent)
        self._accounts = accounts
        self._org = org
        self._new_id = new_account_id()  # the id a new account gets, so a check before saving caches under it
        self._key_stored = False
        self._checks_running = 0
        self.model = AccountListModel(accounts=accounts, parent=self)
        self._build()
        self._connect()
        self.refresh_keyring_notice()
        self._update_pools_tab()
        self._show_first()

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.notice_banner = QLabel(objectName="keyringNotice", wordWrap=True)
        set_themed_style_sheet(self.notice_banner, banner_style("QLabel"))
        self.notice_banner.setTextFormat(Qt.TextFormat.PlainText)

        self._build_list(object_name="accountList", hint=EMPTY_HINT, hint_name="emptyHint", status_line=True)

        self.move_up_action = QAction(
            "Move up", self, shortcut=QKeySequence("Alt+Up"), toolTip="Move the account up (Alt+Up)"
        )
        self.move_down_action = QAction(
            "Move down", self, shortcut=QKeySequence("Alt+Down"), toolTip="Move the account down (Alt+Down)"
        )
        self.duplicate_action = QAction(
            "Duplicate", self, toolTip="A copy of the account, its key included, placed below it"
        )
        self.toggle_enabled_action = QAction(
            "Disable", self, toolTip="A disabled account is kept, with its key, but offered nowhere"
        )
        for action in (self.move_up_action, self.move_down_action, self.duplicate_action, self.toggle_enabled_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.list_view.addAction(action)
        self.list_view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        self.add_button = QPushButton("Add", objectName="addAccount")
        self.remove_button = QPushButton("Remove", objectName="removeAccount")
        self.duplicate_button = _action_button(self.duplicate_action, "duplicateAccount")
        self.move_up_button = _action_button(self.move_up_action, "moveAccountUp")
        self.move_down_button = _action_button(self.move_down_action, "moveAccountDown")
        self.toggle_enabled_button = _action_button(self.toggle_enabled_action, "toggleAccountEnabled")

        self.form = AccountForm()
        form = self.form
        self.admin_key_field: AdminKeyField | None = None
        if self._org is not None:  # an organisation admin key, under the API key (Anthropic, OpenAI)
            self.admin_key_field = AdminKeyField(
                org=self._org, account_for_check=lambda: self._account_from_form(verb="Cannot check", for_check=True)
            )
            form.fields.insertRow(4, "Admin key", self.admin_key_field)
        self._name_field, self._save_field = form.name_edit, form.save_button
        splitter = self._split(
            form,
            row(self.add_button, self.duplicate_button, self.remove_button, None),
            row(self.move_up_button, self.move_down_button, None, self.toggle_enabled_button),
        )
        accounts_page = QWidget()
        page_layout = QVBoxLayout(accounts_page)
        page_layout.setContentsMargins(6, 8, 6, 6)
        page_layout.addWidget(splitter)

        self.pools_editor = PoolsEditor(accounts=self._accounts)
        self.pools_editor.layout().setContentsMargins(6, 8, 6, 6)
        self.tabs = QTabWidget(objectName="accountTabs", documentMode=True)
        self.tabs.addTab(accounts_page, "Accounts")
        self.tabs.addTab(self.pools_editor, "Pools")
        self.routes_editor = RoutesEditor(accounts=self._accounts)
        self.routes_editor.layout().setContentsMargins(6, 8, 6, 6)
        self.tabs.addTab(self.routes_editor, "Routes")

        layout = QVBoxLayout(self)
        layout.addWidget(self.notice_banner)
        layout.addWidget(self.tabs, 1)

    def _connect(self) -> None:
        self._connect_list()
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.rowsMoved, self.model.modelReset):
            signal.connect(self._update_list_actions)
        self.model.dataChanged.connect(self._on_model_data_changed)
        pools = self.pools_editor.model
        for signal in (pools.rowsInserted, pools.rowsRemoved, pools.modelReset):
            signal.connect(self._update_pools_tab)
        routes = self.routes_editor.model
        for signal in (routes.rowsInserted, routes.rowsRemoved, routes.modelReset):
            signal.connect(self._update_pools_tab)
        self.add_button.clicked.connect(self.start_new_account)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.move_up_action.triggered.connect(self._on_move_up_triggered)
        self.move_down_action.triggered.connect(self._on_move_down_triggered)
        self.duplicate_action.triggered.connect(self._on_duplicate_triggered)
        self.toggle_enabled_action.triggered.connect(self._on_toggle_enabled_triggered)
        self.form.provider_combo.currentIndexChanged.connect(self._update_key_field)
        self.form.provider_combo.currentIndexChanged.connect(self._update_admin_key_row)
        self.form.remove_key_button.clicked.connect(self._on_remove_key_clicked)
        self.form.save_button.clicked.connect(self._on_save_clicked)
        self.form.check_button.clicked.connect(self._on_check_clicked)
        for edit in (self.form.name_edit, self.form.url_edit, self.form.key_edit):
            edit.returnPressed.connect(self._on_save_clicked)

    # --- slots: one line each, the work is in the async methods below ---------------------------

    def _on_save_clicked(self) -> None:
        self._tasks.spawn(self.save_current())

    def _on_check_clicked(self) -> None:
        self._tasks.spawn(self.check_current())

    def _on_remove_clicked(self) -> None:
        self._tasks.spawn(self.remove_selected(False))

    def _on_remove_key_clicked(self) -> None:
        self._tasks.spawn(self.remove_key())

    def _on_move_up_triggered(self) -> None:
        self._tasks.spawn(self.move_selected(-1))

    def _on_move_down_triggered(self) -> None:
        self._tasks.spawn(self.move_selected(1))

    def _on_duplicate_triggered(self) -> None:
        self._tasks.spawn(self.duplicate_selected())

    def _on_toggle_enabled_triggered(self) -> None:
        self._tasks.spawn(self.toggle_selected_enabled())

    # --- public --------------------------------------------------------------------------------

    def refresh_keyring_notice(self, *, shown_elsewhere: str | None = None) -> None:
        """Re-read whether keys are kept persistently; call it when the SecretStore degrades.

        `shown_elsewhere`: a notice the window already shows to every pane (the one from start-up),
        so this pane does not say it a second time; a later, different one still shows here.
        """
        if shown_elsewhere is not None:
            self._notice_shown_elsewhere = shown_elsewhere
        notice = self._accounts.keys_kept_for_session
        if notice and notice == getattr(self, "_notice_shown_elsewhere", ""):
            notice = None
        self.notice_banner.setText(notice or "")
        self.notice_banner.setVisible(bool(notice))
        self._update_key_field()

    def select_account(self, account_id: str) -> None:
        self._select(account_id)

    def start_new_account(self) -> None:
        """Empty the form for a new account (what "Add" does)."""
        self._start_new()

    async def save_current(self) -> Account | None:
        """Save the form; an empty key field keeps the stored key. Returns None if nothing was saved.

        A key that does not look like the provider's is saved all the same, with an amber warning.
        """
        account = self._account_from_form(verb="Not saved", for_check=False)
        if account is None:
            return None
        typed = self.form.key_edit.text().strip()
        admin_problem = self.admin_key_field.problem(account.provider_id) if self.admin_key_field else None
        if admin_problem:
            self.form.show_status(f"Not saved: {admin_problem}", "error")
            return None
        if not await self._write(self._accounts.save_account(account, typed or None, self.form.secret_values())):
            return None
        if self.admin_key_field is not None:
            await self.admin_key_field.save(account)
        self.refresh_keyring_notice()  # writing the key may have found the keyring unusable
        self.form.key_edit.clear()  # unchecks "Show" too
        if self._editing_id == account.id:
            self._key_stored = self._key_stored or bool(typed)
            self.form.form_title.setText(account.label)
            self._update_key_field()
        else:
            self.select_account(account.id)
        self.form.show_status(f"Saved “{account.label}”.", None)
        self.form.show_key_warning(key_prefix_warning(account.provider_id, typed) if typed else None)
        self.account_saved.emit(account.id)
        return account

    async def check_current(self) -> CheckResult | None:
        """Check the form's values as they are, saved or not; None when the form is invalid."""
        account = self._account_from_form(verb="Cannot check", for_check=True)
        if account is None:
            return None
        typed = self.form.key_edit.text().strip()
        # No typed key: an existing account is checked with its stored key, a new one with none.
        key = typed or (None if self._editing_id is not None else "")
        generation = self._form_generation
        self._checks_running += 1
        self.form.check_button.setEnabled(False)
        self.form.show_status("Checking…", None)
        try:
            result = await self._accounts.check(account, key, self.form.secret_values())
        except asyncio.CancelledError:
            if generation == self._form_generation:
                self.form.show_status("", None)  # say nothing rather than "Checking…" forever
            raise
        except Exception:
            log.warning("checking an account failed unexpectedly", exc_info=True)
            result = CheckResult(CheckStatus.ERROR, "The check failed unexpectedly; the log has the details.")
        finally:
            self._checks_running -= 1
            self.form.check_button.setEnabled(self._checks_running == 0)
        if generation == self._form_generation:
            self.form.show_status(result.message, "ok" if result.status is CheckStatus.OK else "error")
        self.check_finished.emit(result.status.value, result.message)
        return result

    async def remove_selected(self, confirmed: bool = False) -> bool:
        """Remove the account in the form. Unconfirmed, this only asks; the answer removes it."""
        return await self._remove_current(confirmed)

    async def remove_key(self) -> None:
        """Delete the stored key of the account in the form (the account itself stays)."""
        account = self._selected_account()
        if account is None:
            return
        await self._accounts.save_account(account, "")
        if self._editing_id == account.id:
            self._key_stored = False
            self._update_key_field()
            self.form.show_status("The key was removed; paste a new one to use this account again.", None)

    async def move_selected(self, delta: int) -> None:
        """Move the account in the form `delta` places (negative: up); it stays selected."""
        account = self._selected_account()
        if account is not None:
            await self._accounts.move_account(account.id, delta)
            self._update_list_actions()

    async def duplicate_selected(self) -> Account | None:
        """Copy the account in the form (key included), place the copy below it and select the copy."""
        account = self._selected_account()
        if account is None:
            return None
        copy = await self._accounts.duplicate_account(account.id)
        if copy is None:
            return None
        self.select_account(copy.id)
        self.form.show_status(f"Duplicated “{account.label}” as “{copy.label}”.", None)
        self.account_saved.emit(copy.id)
        return copy

    async def set_selected_enabled(self, enabled: bool) -> None:
        """Enable or disable the account in the form (a disabled one is kept but offered nowhere)."""
        account = self._selected_account()
        if account is None:
            return
        await self._accounts.set_enabled(account.id, enabled)
        if self._editing_id == account.id:
            self.form.enabled_check.setChecked(enabled)
            self.form.show_status(f"“{account.label}” is {'enabled' if enabled else 'disabled'}.", None)
            self._update_list_actions()
        self.account_saved.emit(account.id)

    async def toggle_selected_enabled(self) -> None:
        account = self._selected_account()
        if account is not None:
            await self.set_selected_enabled(not account.enabled)

    async def aclose(self) -> None:
        await super().aclose()
        await self.pools_editor.aclose()
        await self.routes_editor.aclose()
        if self.admin_key_field is not None:
            await self.admin_key_field.aclose()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._tasks.cancel_all()
        self.pools_editor.cancel_tasks()
        self.routes_editor.cancel_tasks()
        super().closeEvent(event)

    # --- the form ------------------------------------------------------------------------------

    def _current_provider(self) -> Provider:
        return self.form.current_provider()

    def _selected_account(self) -> Account | None:
        return self._current()

    def _find(self, item_id: str) -> Account | None:
        return self._accounts.find(item_id)

    def _select(self, item_id: str) -> None:
        if self.model.row_of(item_id) >= 0:
            self.tabs.setCurrentIndex(0)
        super()._select(item_id)

    def _show_item(self, account: Account | None) -> None:
        if account is None:
            self._new_id = new_account_id()
        self._key_stored = False
        self.form.load(account)
        if self.admin_key_field is not None:
            self.admin_key_field.load(account.id if account else None, self.form.current_provider().id)
            self._update_admin_key_row()
        self._update_key_field()
        self._update_list_actions()
        if account is not None:
            self._tasks.spawn(self._load_key_state(account.id, self._form_generation))

    async def _load_key_state(self, account_id: str, generation: int) -> None:
        stored = await self._accounts.has_key(account_id)
        if generation == self._form_generation:
            self._key_stored = stored
            self._update_key_field()

    def _account_from_form(self, *, verb: str, for_check: bool) -> Account | None:
        try:
            return self.form.account(
                account_id=self._editing_id or self._new_id, stored=self._selected_account(), for_check=for_check
            )
        except FormProblem as exc:
            self.form.show_status(f"{verb}: {exc}.", "error")
            return None

    def _show_status(self, text: str, tone: str | None) -> None:
        self.form.show_status(text, tone)

    async def _delete(self, account: Account) -> None:
        await self._accounts.remove_account(account.id)

    def _announce_removed(self, account: Account) -> None:
        self.form.show_status(f"Removed “{account.label}”.", None)
        self.account_removed.emit(account.id)

    def _update_key_field(self) -> None:
        stored = self._editing_id is not None and self._key_stored
        if stored:
            placeholder = STORED_KEY_PLACEHOLDER
        else:
            where = (
                "kept for this session only" if self._accounts.keys_kept_for_session else "stored in the system keyring"
            )
            lead = "Paste the key" if self._current_provider().key_required else "Optional key"
            placeholder = f"{lead}: {where}"
        self.form.set_key_placeholder(placeholder, stored=stored)

    def _update_list_actions(self) -> None:
        account = self._selected_account()
        row_ = self.model.row_of(account.id) if account is not None else -1
        self.move_up_action.setEnabled(row_ > 0)
        self.move_down_action.setEnabled(0 <= row_ < self.model.rowCount() - 1)
        self.duplicate_action.setEnabled(account is not None)
        self.toggle_enabled_action.setEnabled(account is not None)
        self.toggle_enabled_action.setText("Enable" if account is not None and not account.enabled else "Disable")

    # --- reactions -----------------------------------------------------------------------------

    def _on_model_data_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, _roles: Sequence[int] = ()
    ) -> None:
        row_ = self.model.row_of(self._editing_id) if self._editing_id else -1
        if top_left.row() <= row_ <= bottom_right.row():
            account = self.model.account_at(row_)
            if account is not None:
                # Only what the user cannot edit here, so unsaved typing is never overwritten.
                self.form.show_organisation(account.organization_id)
            self._update_list_actions()

    def _update_pools_tab(self) -> None:
        for index, name, editor in ((1, "Pools", self.pools_editor), (2, "Routes", self.routes_editor)):
            count = editor.model.rowCount()
            self.tabs.setTabText(index, f"{name} ({count})" if count else name)

    def _update_admin_key_row(self) -> None:
        field = self.admin_key_field
        if field is not None:
            provider_id = self.form.current_provider().id
            self.form.fields.setRowVisible(field, field.applies_to(provider_id))
            field.provider_changed(provider_id)
