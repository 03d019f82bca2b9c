"""The "Admin key" field of the account form: an optional organisation admin key (Anthropic, OpenAI).

It lets the Usage pane show the provider's own usage, costs and API keys. The key goes to the
keyring (OrgUsageService), never to settings.json; the field is emptied once it is saved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import DomainError
from desktop_app.domain.org_usage import ADMIN_KEY_PREFIXES, admin_capable, admin_key_problem
from desktop_app.services.accounts.org_usage import OrgUsageService
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.theme import set_tone

log = logging.getLogger(__name__)
STORED = "•••• admin key stored — leave empty to keep"


class AdminKeyField(QWidget):
    """The admin key's line edit, Check and Remove buttons, and one line saying how it went."""

    check_finished = Signal(bool, str)  # worked, the sentence shown
    key_changed = Signal(str)  # account id: its admin key was saved or removed

    def __init__(
        self, *, org: OrgUsageService, account_for_check: Callable[[], Account | None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._org = org
        self._account_for_check = account_for_check
        self._tasks = TaskOwner("AdminKeyField")
        self._stored = False
        self._generation = 0
        self.edit = QLineEdit(objectName="adminKey", echoMode=QLineEdit.EchoMode.Password)
        self.check_button = QPushButton(
            "Check",
            objectName="checkAdminKey",
            toolTip="One cheap admin call (lists one key or project); uses no tokens",
        )
        self.remove_button = QPushButton("Remove", objectName="removeAdminKey", enabled=False)
        self.note = QLabel(objectName="adminKeyNote", wordWrap=True, visible=False)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.edit, 1)
        line.addWidget(self.check_button)
        line.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(line)
        layout.addWidget(self.note)
        self.check_button.clicked.connect(self._on_check_clicked)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.edit.textChanged.connect(lambda _text: self.show_note("", None))

    def _on_check_clicked(self) -> None:
        self._tasks.spawn(self.check())

    def _on_remove_clicked(self) -> None:
        account = self._account_for_check()
        if account is not None:
            self._tasks.spawn(self.remove(account))

    # --- what the pane calls -------------------------------------------------------------------

    def applies_to(self, provider_id: str) -> bool:
        return admin_capable(provider_id)

    def load(self, account_id: str | None, provider_id: str) -> None:
        """Show the field for `provider_id` (hidden for other providers) and learn whether a key is stored."""
        self._generation += 1
        self.edit.clear()
        self.show_note("", None)
        self._stored = False
        self._placeholder(provider_id)
        if account_id is not None and admin_capable(provider_id):
            self._tasks.spawn(self._load_stored(account_id, provider_id, self._generation))

    def provider_changed(self, provider_id: str) -> None:
        self._placeholder(provider_id)

    def problem(self, provider_id: str) -> str | None:
        """Why the typed admin key cannot be saved with this provider (a sentence), or None."""
        typed = self.edit.text().strip()
        if not typed or not admin_capable(provider_id):
            return None
        problem = admin_key_problem(provider_id, typed)
        return None if problem is None else problem[:1].upper() + problem[1:] + "."

    async def save(self, account: Account) -> None:
        """Store the typed admin key with the saved account (nothing typed: the stored one stays)."""
        typed = self.edit.text().strip()
        if not typed or not admin_capable(account.provider_id):
            return
        try:
            await self._org.set_admin_key(account, typed)
        except DomainError as exc:
            self.show_note(exc.message, "error")
            return
        self.edit.clear()
        self._stored = True
        self._placeholder(account.provider_id)
        self.show_note("Admin key saved: the Usage pane shows this organisation's own figures.", None)
        self.key_changed.emit(account.id)

    async def check(self) -> bool:
        account = self._account_for_check()
        if account is None:
            return False
        problem = self.problem(account.provider_id)
        if problem is not None:
            self.show_note(problem, "error")
            self.check_finished.emit(False, problem)
            return False
        self.check_button.setEnabled(False)
        self.show_note("Checking the admin key…", "busy")
        try:
            await self._org.check_admin_key(account, self.edit.text())
        except DomainError as exc:
            said, worked, tone = f"{exc.message} {exc.action}".strip(), False, "error"
        except Exception:
            log.warning("checking an admin key failed unexpectedly", exc_info=True)
            said, worked, tone = "The check failed unexpectedly; the log has the details.", False, "error"
        else:
            said, worked, tone = "The admin key works: usage, costs and API keys can be read.", True, "ok"
        finally:
            self.check_button.setEnabled(True)
        self.show_note(said, tone)
        self.check_finished.emit(worked, said)
        return worked

    async def remove(self, account: Account) -> None:
        await self._org.set_admin_key(account, "")
        self._stored = False
        self._placeholder(account.provider_id)
        self.show_note("Admin key removed.", None)
        self.key_changed.emit(account.id)

    async def aclose(self) -> None:
        await self._tasks.aclose()

    def show_note(self, text: str, tone: str | None) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))
        set_tone(self.note, tone)

    # --- internals -----------------------------------------------------------------------------

    async def _load_stored(self, account_id: str, provider_id: str, generation: int) -> None:
        stored = await self._org.has_admin_key(account_id)
        if generation == self._generation:
            self._stored = stored
            self._placeholder(provider_id)

    def _placeholder(self, provider_id: str) -> None:
        prefix = ADMIN_KEY_PREFIXES.get(provider_id, "")
        self.edit.setPlaceholderText(STORED if self._stored else f"Optional: {prefix}… (usage, costs, keys)")
        self.remove_button.setEnabled(self._stored)
