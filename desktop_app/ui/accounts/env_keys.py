"""API keys found in environment variables, offered as accounts: what the first-run welcome screen and
the key-import dialog share.

A key is only ever shown masked, and the keys are let go as soon as the offer is answered. Either
answer is recorded, so the offer is made once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import Qt, SignalInstance
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
from desktop_app.services.accounts.accounts import AccountService, EnvKey
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.theme import set_tone

log = logging.getLogger(__name__)


def env_key_text(key: EnvKey) -> str:
    """ "Anthropic — ANTHROPIC_API_KEY — sk-ant…abcd": the key only ever in its masked form."""
    return f"{PROVIDERS[key.provider_id].name} — {key.variable} — {key.masked}"


def key_destination(accounts: AccountService) -> str:
    """Where an imported key goes, as the offers say it."""
    if accounts.keys_kept_for_session:
        return "kept for this session only (no system keyring was found)"
    return "stored in the system keyring"


class EnvKeyList(QWidget):
    """One checkbox per key found, ticked; the same key in a second variable is listed unticked.

    Its layout has no margins; the dialog sets the margins and spacing it wants.
    """

    def __init__(self, keys: Sequence[EnvKey], *, object_prefix: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys = list(keys)
        self.checkboxes: list[QCheckBox] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        first_variable: dict[str, str] = {}  # the same key in two variables is ticked once
        for key in self._keys:
            box = QCheckBox(env_key_text(key), objectName=f"{object_prefix}_{key.variable}")
            box.setToolTip(f"Adds the account “{PROVIDERS[key.provider_id].name} ({key.variable})”")
            same_as = first_variable.setdefault(key.secret, key.variable)
            box.setChecked(same_as == key.variable)
            if same_as != key.variable:
                box.setText(f"{box.text()} (the same key as {same_as})")
            self.checkboxes.append(box)
            layout.addWidget(box)

    @property
    def keys(self) -> list[EnvKey]:
        return list(self._keys)

    def selected(self) -> list[EnvKey]:
        if not self._keys:  # forgotten already
            return []
        return [key for key, box in zip(self._keys, self.checkboxes, strict=True) if box.isChecked()]

    def forget(self) -> None:
        """Let the keys go (the offer was answered); nothing is selected from then on."""
        self._keys = []


class KeyOfferDialog(QDialog):
    """The answering of a first-run offer: a status line for what went wrong, an accept and a decline
    button, and declining (that button, Escape, the close button) that adds nothing and records the
    answer. A subclass builds `key_list`, implements `_decline` and `_set_busy`.
    """

    key_list: EnvKeyList
    status_label: QLabel

    def __init__(self, *, accounts: AccountService, task_owner: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._accounts = accounts
        self._tasks = TaskOwner(task_owner)
        self._busy = False
        self.finished.connect(self._on_finished)

    # --- hooks ---------------------------------------------------------------------------------

    async def _decline(self) -> None:
        """The subclass's "no" (it calls `_record_declined` with its own signal)."""
        raise NotImplementedError

    def _set_busy(self, busy: bool) -> None:
        raise NotImplementedError

    # --- public --------------------------------------------------------------------------------

    def reject(self) -> None:
        """The decline button, Escape and the window's close button all decline the offer."""
        if not self._busy:
            self._tasks.spawn(self._decline())

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- inside --------------------------------------------------------------------------------

    def _status_line(self, object_name: str) -> QLabel:
        label = QLabel(objectName=object_name, wordWrap=True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setVisible(False)
        return label

    def _answer_buttons(self, accept: QPushButton, decline: QPushButton) -> QDialogButtonBox:
        buttons = QDialogButtonBox()
        buttons.addButton(accept, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(decline, QDialogButtonBox.ButtonRole.RejectRole)
        decline.clicked.connect(self.reject)
        return buttons

    async def _record_declined(self, announce: SignalInstance, what: str) -> None:
        """Add nothing, record that the offer was answered, `announce` it and close."""
        self._set_busy(True)
        try:
            await self._accounts.decline_env_import()
        except OSError:
            log.warning("could not record that %s", what, exc_info=True)
        announce.emit()
        super().reject()

    def _show_problem(self, text: str) -> None:
        self.status_label.setText(text)
        set_tone(self.status_label, "error")
        self.status_label.setVisible(True)

    def _on_finished(self, _result: int) -> None:
        self.key_list.forget()  # the secrets are not held a moment longer than needed
