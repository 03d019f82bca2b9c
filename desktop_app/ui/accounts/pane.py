"""The Accounts pane: the list of accounts on the left, the selected (or new) one's form on the right.

Keys only ever enter the key field by the user typing or pasting them: a stored key is never
read back into a widget, so "Show" can only reveal what the user just typed.
"""

from __future__ import annotations

import asyncio
import logging

import shiboken6
from pydantic import ValidationError
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QCloseEvent, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import Account, new_account_id
from desktop_app.domain.providers import PROVIDERS, Provider
from desktop_app.services.accounts import AccountService
from desktop_app.services.catalog import CheckResult, CheckStatus
from desktop_app.ui.accounts.model import AccountItemDelegate, AccountListModel
from desktop_app.ui.common.tasks import TaskOwner

log = logging.getLogger(__name__)

OK_COLOUR = "#1e7b34"
ERROR_COLOUR = "#c0392b"
EMPTY_HINT = "Add an account to chat with a cloud or local model."
STORED_KEY_PLACEHOLDER = "•••• stored — leave empty to keep"
_BANNER_STYLE = (
    "QLabel { background: #fff4ce; color: #4d3b00; border: 1px solid #e3c55a;"
    " border-radius: 4px; padding: 8px 10px; }"
)


def _row(*widgets: QWidget | None) -> QHBoxLayout:
    """Widgets side by side; None is a stretch. The first widget takes the spare room if no stretch."""
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        if widget is None:
            row.addStretch(1)
        else:
            row.addWidget(widget)
    if None not in widgets:
        row.setStretch(0, 1)
    return row


def _first_problem(error: ValidationError) -> str:
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ").rstrip(".")


class AccountsPane(QWidget):
    account_saved = Signal(str)  # account id
    account_removed = Signal(str)  # account id
    check_finished = Signal(str, str)  # CheckStatus value, one-sentence message

    def __init__(self, *, accounts: AccountService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._accounts = accounts
        self._tasks = TaskOwner("AccountsPane")
        self._editing_id: str | None = None  # None: the form holds a new, unsaved account
        self._new_id = new_account_id()  # the id a new account gets, so a check before saving caches under it
        self._key_stored = False
        self._form_generation = 0  # bumped whenever the form is loaded, so stale results are dropped
        self._checks_running = 0
        self._confirm_box: QMessageBox | None = None
        self.model = AccountListModel(accounts=accounts, parent=self)
        self._build()
        self._connect()
        self.refresh_keyring_notice()
        self._update_empty_state()
        first = self.model.account_at(0)
        if first is not None:
            self.select_account(first.id)
        else:
            self._load_account(None)

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.notice_banner = QLabel(objectName="keyringNotice", wordWrap=True, styleSheet=_BANNER_STYLE)
        self.notice_banner.setTextFormat(Qt.TextFormat.PlainText)

        self.list_view = QListView(objectName="accountList", uniformItemSizes=True)
        self.list_view.setModel(self.model)
        self.list_view.setItemDelegate(AccountItemDelegate(self.list_view))
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # The hint sits on the same framed, base-coloured panel as the list, so the area keeps its shape.
        self.empty_hint = QLabel(EMPTY_HINT, objectName="emptyHint", wordWrap=True, margin=24,
                                 alignment=Qt.AlignmentFlag.AlignCenter, frameShape=QFrame.Shape.StyledPanel,
                                 autoFillBackground=True, backgroundRole=QPalette.ColorRole.Base,
                                 foregroundRole=QPalette.ColorRole.PlaceholderText)
        self._list_stack = QStackedWidget()
        self._list_stack.addWidget(self.list_view)
        self._list_stack.addWidget(self.empty_hint)
        self.add_button = QPushButton("Add", objectName="addAccount")
        self.remove_button = QPushButton("Remove", objectName="removeAccount")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 6, 0)
        left_layout.addWidget(self._list_stack, 1)
        left_layout.addLayout(_row(self.add_button, self.remove_button, None))

        self.form_title = QLabel(objectName="formTitle")
        title_font = QFont(self.form_title.font())
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        self.form_title.setFont(title_font)
        self.provider_combo = QComboBox(objectName="provider")
        for provider in PROVIDERS.values():
            self.provider_combo.addItem(provider.name, provider.id)
        self.name_edit = QLineEdit(objectName="name", placeholderText="Claude, work")
        self.url_edit = QLineEdit(objectName="baseUrl")
        self.key_edit = QLineEdit(objectName="apiKey", echoMode=QLineEdit.EchoMode.Password)
        self.key_edit.setMinimumWidth(self.key_edit.fontMetrics().horizontalAdvance(STORED_KEY_PLACEHOLDER) + 24)
        self.show_key_button = QPushButton("Show", objectName="showKey", checkable=True, enabled=False,
                                           toolTip="Show the key you typed")
        self.remove_key_button = QPushButton("Remove key", objectName="removeKey",
                                             toolTip="Delete this account's stored key")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Provider", self.provider_combo)
        form.addRow("Name", self.name_edit)
        form.addRow("Base URL", self.url_edit)
        form.addRow("API key", _row(self.key_edit, self.show_key_button, self.remove_key_button))
        self.save_button = QPushButton("Save", objectName="save", default=True)
        self.check_button = QPushButton("Check", objectName="check",
                                        toolTip="List the provider's models with these settings; uses no tokens")
        self.status_label = QLabel(objectName="status", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        form_box = QWidget(maximumWidth=640)
        form_layout = QVBoxLayout(form_box)
        form_layout.setContentsMargins(12, 0, 0, 0)
        form_layout.addWidget(self.form_title)
        form_layout.addLayout(form)
        form_layout.addLayout(_row(self.save_button, self.check_button, None))
        form_layout.addWidget(self.status_label)
        form_layout.addStretch(1)
        right = QWidget()
        right_layout = QHBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(form_box, 1)
        right_layout.addStretch(0)  # takes only the room beyond the form's maximum width

        splitter = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([280, 720])
        layout = QVBoxLayout(self)
        layout.addWidget(self.notice_banner)
        layout.addWidget(splitter, 1)

    def _connect(self) -> None:
        self.list_view.selectionModel().currentChanged.connect(self._on_list_current_changed)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            signal.connect(self._update_empty_state)
        self.add_button.clicked.connect(self.start_new_account)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.provider_combo.currentIndexChanged.connect(self._on_provider_changed)
        self.show_key_button.toggled.connect(self._on_show_key_toggled)
        self.key_edit.textChanged.connect(self._on_key_text_changed)
        self.remove_key_button.clicked.connect(self._on_remove_key_clicked)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.check_button.clicked.connect(self._on_check_clicked)
        for edit in (self.name_edit, self.url_edit, self.key_edit):
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

    # --- public --------------------------------------------------------------------------------

    @property
    def editing_id(self) -> str | None:
        """The id of the account in the form, or None for a new one."""
        return self._editing_id

    @property
    def confirm_box(self) -> QMessageBox | None:
        """The open "Remove account?" question, if any."""
        return self._confirm_box

    def refresh_keyring_notice(self) -> None:
        """Re-read whether keys are kept persistently; call it when the SecretStore degrades."""
        secrets = self._accounts.secrets
        notice = None if secrets.persistent else secrets.notice
        self.notice_banner.setText(notice or "")
        self.notice_banner.setVisible(bool(notice))
        self._update_key_field()

    def select_account(self, account_id: str) -> None:
        row = self.model.row_of(account_id)
        if row >= 0:
            self.list_view.setCurrentIndex(self.model.index(row))

    def start_new_account(self) -> None:
        """Empty the form for a new account (what "Add" does)."""
        generation = self._form_generation
        self.list_view.selectionModel().clear()
        if generation == self._form_generation:
            self._load_account(None)
        self.name_edit.setFocus()

    async def save_current(self) -> Account | None:
        """Save the form; an empty key field keeps the stored key. Returns None if nothing was saved."""
        account = self._account_from_form(verb="Not saved", for_check=False)
        if account is None:
            return None
        typed = self.key_edit.text().strip()
        self.save_button.setEnabled(False)
        try:
            await self._accounts.save_account(account, typed or None)
        except OSError as exc:
            self._show_status(f"Not saved: the settings file could not be written ({exc.strerror or exc}).",
                              ERROR_COLOUR)
            return None
        finally:
            self.save_button.setEnabled(True)
        self.refresh_keyring_notice()  # writing the key may have found the keyring unusable
        self.key_edit.clear()  # unchecks "Show" too
        if self._editing_id == account.id:
            self._key_stored = self._key_stored or bool(typed)
            self.form_title.setText(account.label)
            self._update_key_field()
        else:
            self.select_account(account.id)
        self._show_status(f"Saved “{account.label}”.", None)
        self.account_saved.emit(account.id)
        return account

    async def check_current(self) -> CheckResult | None:
        """Check the form's values as they are, saved or not; None when the form is invalid."""
        account = self._account_from_form(verb="Cannot check", for_check=True)
        if account is None:
            return None
        typed = self.key_edit.text().strip()
        # No typed key: an existing account is checked with its stored key, a new one with none.
        key = typed or (None if self._editing_id is not None else "")
        generation = self._form_generation
        self._checks_running += 1
        self.check_button.setEnabled(False)
        self._show_status("Checking…", None)
        try:
            result = await self._accounts.check(account, key)
        except asyncio.CancelledError:
            if shiboken6.isValid(self) and generation == self._form_generation:
                self._show_status("", None)  # say nothing rather than "Checking…" forever
            raise
        except Exception:
            log.warning("checking an account failed unexpectedly", exc_info=True)
            result = CheckResult(CheckStatus.ERROR, "The check failed unexpectedly; the log has the details.")
        finally:
            self._checks_running -= 1
            if shiboken6.isValid(self):
                self.check_button.setEnabled(self._checks_running == 0)
        if generation == self._form_generation:
            self._show_status(result.message, OK_COLOUR if result.status is CheckStatus.OK else ERROR_COLOUR)
        self.check_finished.emit(result.status.value, result.message)
        return result

    async def remove_selected(self, confirmed: bool = False) -> bool:
        """Remove the account in the form. Unconfirmed, this only asks; the answer removes it."""
        account = self._accounts.find(self._editing_id) if self._editing_id else None
        if account is None:
            return False
        if not confirmed:
            self._ask_to_remove(account)
            return False
        row = self.model.row_of(account.id)
        await self._accounts.remove_account(account.id)
        neighbour = self.model.account_at(min(row, self.model.rowCount() - 1))
        if neighbour is not None:
            self.select_account(neighbour.id)
        else:
            self.start_new_account()
        self._show_status(f"Removed “{account.label}”.", None)
        self.account_removed.emit(account.id)
        return True

    async def remove_key(self) -> None:
        """Delete the stored key of the account in the form (the account itself stays)."""
        account = self._accounts.find(self._editing_id) if self._editing_id else None
        if account is None:
            return
        await self._accounts.save_account(account, "")
        if self._editing_id == account.id:
            self._key_stored = False
            self._update_key_field()
            self._show_status("The key was removed; paste a new one to use this account again.", None)

    async def aclose(self) -> None:
        await self._tasks.aclose()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._tasks.cancel_all()
        super().closeEvent(event)

    # --- the form ------------------------------------------------------------------------------

    def _current_provider(self) -> Provider:
        return PROVIDERS[self.provider_combo.currentData()]

    def _load_account(self, account: Account | None) -> None:
        self._form_generation += 1
        self._editing_id = account.id if account is not None else None
        if account is None:
            self._new_id = new_account_id()
        self._key_stored = False
        provider_id = account.provider_id if account is not None else next(iter(PROVIDERS))
        self.provider_combo.setCurrentIndex(self.provider_combo.findData(provider_id))
        self.name_edit.setText(account.label if account is not None else "")
        self.url_edit.setText((account.base_url or "") if account is not None else "")
        self.key_edit.clear()  # unchecks "Show" too
        self.form_title.setText(account.label if account is not None else "New account")
        self.remove_button.setEnabled(account is not None)
        self._show_status("", None)
        self._on_provider_changed()
        if account is not None:
            self._tasks.spawn(self._load_key_state(account.id, self._form_generation))

    async def _load_key_state(self, account_id: str, generation: int) -> None:
        stored = await self._accounts.has_key(account_id)
        if generation == self._form_generation:
            self._key_stored = stored
            self._update_key_field()

    def _account_from_form(self, *, verb: str, for_check: bool) -> Account | None:
        label = self.name_edit.text()
        if for_check and not label.strip():
            label = self._current_provider().name  # a name is not needed to check
        try:
            return Account(
                id=self._editing_id or self._new_id,
                provider_id=self.provider_combo.currentData(),
                label=label,
                base_url=self.url_edit.text().strip() or None,
            )
        except ValidationError as exc:
            self._show_status(f"{verb}: {_first_problem(exc)}.", ERROR_COLOUR)
            return None

    def _update_key_field(self) -> None:
        stored = self._editing_id is not None and self._key_stored
        if stored:
            placeholder = STORED_KEY_PLACEHOLDER
        else:
            secrets = self._accounts.secrets
            where = "kept for this session only" if secrets.notice and not secrets.persistent \
                else "stored in the system keyring"
            lead = "Paste the key" if self._current_provider().key_required else "Optional key"
            placeholder = f"{lead}: {where}"
        self.key_edit.setPlaceholderText(placeholder)
        self.remove_key_button.setEnabled(stored)

    def _show_status(self, text: str, colour: str | None) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {colour};" if colour else "")

    # --- reactions -----------------------------------------------------------------------------

    def _on_list_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        account = self.model.account_at(current.row()) if current.isValid() else None
        if account is not None:
            self.list_view.selectionModel().select(current, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self._load_account(account)
        elif self._editing_id is not None:
            self._load_account(None)

    def _on_provider_changed(self) -> None:
        self.url_edit.setPlaceholderText(self._current_provider().default_base_url)
        self._update_key_field()

    def _on_show_key_toggled(self, shown: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_key_button.setText("Hide" if shown else "Show")

    def _on_key_text_changed(self, text: str) -> None:
        if not text:
            self.show_key_button.setChecked(False)
        self.show_key_button.setEnabled(bool(text))

    def _update_empty_state(self) -> None:
        self._list_stack.setCurrentWidget(self.list_view if self.model.rowCount() else self.empty_hint)

    def _ask_to_remove(self, account: Account) -> None:
        if self._confirm_box is not None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Remove account", f"Remove the account “{account.label}”?",
                          QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText("Its stored key is deleted too.")
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(
            lambda _result: self._on_confirm_finished(box.clickedButton() is remove, account.id))
        self._confirm_box = box
        box.open()

    def _on_confirm_finished(self, confirmed: bool, account_id: str) -> None:
        self._confirm_box = None
        if confirmed and self._editing_id == account_id:
            self._tasks.spawn(self.remove_selected(True))
