"""The first-run offer to turn API keys found in environment variables into accounts.

Nothing is imported without the user pressing "Import selected"; the keys are only ever shown
masked. "Not now" (or closing the dialog) records that the offer was made, so it is not repeated.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop_app.services.accounts.accounts import AccountService, EnvKey, find_env_keys
from desktop_app.ui.accounts.env_keys import (
    EnvKeyList,
    KeyOfferDialog,
    env_key_text,
    key_destination,
)
from desktop_app.ui.accounts.form import bold_title

__all__ = ["TITLE", "EnvImportDialog", "env_key_text", "maybe_offer_env_import"]

TITLE = "API keys found in your environment"


class EnvImportDialog(KeyOfferDialog):
    """One checkbox per key found; "Import selected" creates the accounts, "Not now" declines."""

    imported = Signal(list)  # the ids of the accounts created
    declined = Signal()

    def __init__(self, keys: list[EnvKey], *, accounts: AccountService, parent: QWidget | None = None) -> None:
        super().__init__(accounts=accounts, task_owner="EnvImportDialog", parent=parent)
        self.setWindowTitle("Import API keys")
        self.setObjectName("envImportDialog")

        self.title_label = bold_title(QLabel(TITLE, objectName="envImportTitle"))
        self.intro_label = QLabel(
            "ModelDesk can add an account for each key you tick, its key "
            + key_destination(accounts)
            + ". Nothing is imported until you press “Import selected”.",
            objectName="envImportIntro",
            wordWrap=True,
        )
        self.key_list = EnvKeyList(keys, object_prefix="envKey")
        self.key_list.layout().setContentsMargins(8, 4, 0, 4)
        self.key_list.layout().setSpacing(6)
        self.checkboxes: list[QCheckBox] = self.key_list.checkboxes
        for box in self.checkboxes:
            box.toggled.connect(self._update_buttons)
        self.note_label = QLabel(
            "The variables themselves are left as they are.",
            objectName="envImportNote",
            wordWrap=True,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        self.status_label = self._status_line("envImportStatus")
        self.import_button = QPushButton("Import selected", objectName="importSelected", default=True)
        self.not_now_button = QPushButton("Not now", objectName="notNow", autoDefault=False)
        self.buttons = self._answer_buttons(self.import_button, self.not_now_button)

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self.title_label)
        layout.addWidget(self.intro_label)
        layout.addWidget(self.key_list)
        layout.addWidget(self.note_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        self.import_button.clicked.connect(self._on_import_clicked)
        self._update_buttons()

    # --- slots ---------------------------------------------------------------------------------

    def _on_import_clicked(self) -> None:
        self._tasks.spawn(self.import_selected())

    # --- public --------------------------------------------------------------------------------

    @property
    def keys(self) -> list[EnvKey]:
        return self.key_list.keys

    def selected_keys(self) -> list[EnvKey]:
        return self.key_list.selected()

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
        await self._record_declined(self.declined, "the key import was declined")

    _decline = decline  # what "Not now", Escape and the close button do

    # --- inside --------------------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for box in self.checkboxes:
            box.setEnabled(not busy)
        self.not_now_button.setEnabled(not busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.import_button.setEnabled(not self._busy and any(box.isChecked() for box in self.checkboxes))


def maybe_offer_env_import(
    parent: QWidget | None, accounts: AccountService, environ: Mapping[str, str] | None = None
) -> EnvImportDialog | None:
    """Open the import offer if it was never made and keys are found; None otherwise.

    The dialog deletes itself when answered. Without a parent the caller must keep a reference
    to it while it is open.
    """
    if accounts.env_import_offered:
        return None
    keys = find_env_keys(environ)
    if not keys:
        return None
    dialog = EnvImportDialog(keys, accounts=accounts, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
