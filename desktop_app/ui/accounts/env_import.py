"""The first-run offer to turn API keys found in environment variables into accounts.

Nothing is imported without the user pressing "Import selected"; the keys are only ever shown
masked. "Not now" (or closing the dialog) records that the offer was made, so it is not repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.providers import PROVIDERS
from desktop_app.services.accounts import AccountService, EnvKey, find_env_keys
from desktop_app.ui.accounts.form import ERROR_COLOUR, bold_title
from desktop_app.ui.common.tasks import TaskOwner

log = logging.getLogger(__name__)

TITLE = "API keys found in your environment"


def env_key_text(key: EnvKey) -> str:
    """"Anthropic — ANTHROPIC_API_KEY — sk-ant…abcd": the key only ever in its masked form."""
    return f"{PROVIDERS[key.provider_id].name} — {key.variable} — {key.masked}"


class EnvImportDialog(QDialog):
    """One checkbox per key found; "Import selected" creates the accounts, "Not now" declines."""

    imported = Signal(list)  # the ids of the accounts created
    declined = Signal()

    def __init__(self, keys: list[EnvKey], *, accounts: AccountService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._accounts = accounts
        self._keys = list(keys)
        self._tasks = TaskOwner("EnvImportDialog")
        self._busy = False
        self.setWindowTitle("Import API keys")
        self.setObjectName("envImportDialog")

        secrets = accounts.secrets
        where = "kept for this session only (no system keyring was found)" \
            if secrets.notice and not secrets.persistent else "stored in the system keyring"
        self.title_label = bold_title(QLabel(TITLE, objectName="envImportTitle"))
        self.intro_label = QLabel(
            "ModelDesk can add an account for each key you tick, its key " + where + ". "
            "Nothing is imported until you press “Import selected”.",
            objectName="envImportIntro", wordWrap=True)
        self.checkboxes: list[QCheckBox] = []
        first_variable: dict[str, str] = {}  # the same key in two variables is offered once
        for key in self._keys:
            box = QCheckBox(env_key_text(key), objectName=f"envKey_{key.variable}")
            box.setToolTip(f"Adds the account “{PROVIDERS[key.provider_id].name} ({key.variable})”")
            same_as = first_variable.setdefault(key.secret, key.variable)
            box.setChecked(same_as == key.variable)
            if same_as != key.variable:
                box.setText(f"{box.text()} (the same key as {same_as})")
            box.toggled.connect(self._update_buttons)
            self.checkboxes.append(box)
        self.note_label = QLabel("The variables themselves are left as they are.", objectName="envImportNote",
                                 wordWrap=True, foregroundRole=QPalette.ColorRole.PlaceholderText)
        self.status_label = QLabel(objectName="envImportStatus", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setVisible(False)
        self.buttons = QDialogButtonBox()
        self.import_button = QPushButton("Import selected", objectName="importSelected", default=True)
        self.not_now_button = QPushButton("Not now", objectName="notNow", autoDefault=False)
        self.buttons.addButton(self.import_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.not_now_button, QDialogButtonBox.ButtonRole.RejectRole)

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self.title_label)
        layout.addWidget(self.intro_label)
        keys_box = QVBoxLayout()
        keys_box.setContentsMargins(8, 4, 0, 4)
        keys_box.setSpacing(6)
        for box in self.checkboxes:
            keys_box.addWidget(box)
        layout.addLayout(keys_box)
        layout.addWidget(self.note_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        self.import_button.clicked.connect(self._on_import_clicked)
        self.not_now_button.clicked.connect(self.reject)
        self.finished.connect(self._on_finished)
        self._update_buttons()

    # --- slots ---------------------------------------------------------------------------------

    def _on_import_clicked(self) -> None:
        self._tasks.spawn(self.import_selected())

    def reject(self) -> None:
        """"Not now", Escape and the window's close button all decline the offer."""
        if not self._busy:
            self._tasks.spawn(self.decline())

    # --- public --------------------------------------------------------------------------------

    @property
    def keys(self) -> list[EnvKey]:
        return list(self._keys)

    def selected_keys(self) -> list[EnvKey]:
        if not self._keys:  # answered already
            return []
        return [key for key, box in zip(self._keys, self.checkboxes, strict=True) if box.isChecked()]

    async def import_selected(self) -> list[str]:
        """Create one account per ticked key; returns their ids (also sent with `imported`)."""
        chosen = self.selected_keys()
        if self._busy or not chosen:
            return []
        self._set_busy(True)
        try:
            created = await self._accounts.import_env_keys(chosen)
        except OSError as exc:
            self._show_problem(f"Not imported: the settings file could not be written ({exc.strerror or exc}).")
            self._set_busy(False)
            return []
        ids = [account.id for account in created]
        self.imported.emit(ids)
        super().accept()
        return ids

    async def decline(self) -> None:
        """Import nothing, and do not offer again."""
        self._set_busy(True)
        try:
            await self._accounts.decline_env_import()
        except OSError:
            log.warning("could not record that the key import was declined", exc_info=True)
        self.declined.emit()
        super().reject()

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- inside --------------------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for box in self.checkboxes:
            box.setEnabled(not busy)
        self.not_now_button.setEnabled(not busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.import_button.setEnabled(not self._busy and any(box.isChecked() for box in self.checkboxes))

    def _show_problem(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.status_label.setVisible(True)

    def _on_finished(self, _result: int) -> None:
        self._keys = []  # the secrets are not held a moment longer than needed


def maybe_offer_env_import(parent: QWidget | None, accounts: AccountService,
                           environ: Mapping[str, str] | None = None) -> EnvImportDialog | None:
    """Open the import offer if it was never made and keys are found; None otherwise.

    The dialog deletes itself when answered. Without a parent the caller must keep a reference
    to it while it is open.
    """
    if accounts.settings.env_import_offered:
        return None
    keys = find_env_keys(environ)
    if not keys:
        return None
    dialog = EnvImportDialog(keys, accounts=accounts, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
