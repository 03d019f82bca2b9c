"""The first five minutes: one screen that lists what is already on this machine.

A local Ollama, a running llama-server and provider keys in environment variables each get a
checkbox, ticked; GGUF folders are listed for information. Nothing is added until "Add selected",
which creates exactly the ticked accounts (keys go to the keyring, never to a file). "Skip", Escape
and the close button add nothing. Either answer records that the first-run offer was made, so
neither this screen nor the separate key-import offer comes back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import Account
from desktop_app.domain.providers import PROVIDERS
from desktop_app.domain.urls import same_server
from desktop_app.services.accounts.accounts import AccountService, EnvKey
from desktop_app.services.local.discovery import Discovery, FoundServer, discover
from desktop_app.ui.accounts.env_keys import EnvKeyList, KeyOfferDialog, key_destination

if TYPE_CHECKING:
    from desktop_app.ui.first_run import LocalModelOffer

LocalOfferFactory = Callable[[], Awaitable["LocalModelOffer | None"]]

TITLE = "Welcome to ModelDesk"
LOCAL_SECTION = "A model on this computer"
OLLAMA_LABEL = "Ollama (this computer)"
LLAMA_SERVER_LABEL = "llama.cpp server (this computer)"


@dataclass(frozen=True, slots=True)
class _ServerChoice:
    account: Account
    box: QCheckBox


def _home_relative(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def server_account(kind: str, server: FoundServer) -> Account:
    """The account "Add selected" creates for a found server (default URL left implicit)."""
    if kind == "ollama":
        provider, label, url = PROVIDERS["ollama"], OLLAMA_LABEL, server.url
    else:
        provider, label, url = PROVIDERS["llamacpp"], LLAMA_SERVER_LABEL, f"{server.url}/v1"
    base_url = None if same_server(url, provider.default_base_url) else url
    return Account(provider_id=provider.id, label=label, base_url=base_url)


class WelcomeDialog(KeyOfferDialog):
    accounts_added = Signal(list)  # the ids of the accounts created, in order
    skipped = Signal()
    local_model_chosen = Signal()  # the local model offer ran to the end (the chat is open with it)

    def __init__(
        self,
        discovery: Discovery,
        *,
        accounts: AccountService,
        local_offer: LocalModelOffer | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(accounts=accounts, task_owner="WelcomeDialog", parent=parent)
        self._discovery = discovery
        self.local_offer = local_offer
        self.setWindowTitle(TITLE)
        self.setObjectName("welcomeDialog")

        self.title_label = QLabel(TITLE, objectName="welcomeTitle")
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title_label.setFont(font)
        self.intro_label = QLabel(
            "ModelDesk looked around this computer. Tick what you want to use; nothing is added "
            "until you press “Add selected”.",
            objectName="welcomeIntro",
            wordWrap=True,
        )

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.setContentsMargins(20, 18, 20, 14)
        layout.addWidget(self.title_label)
        if local_offer is not None:  # first: nothing to chat with is here yet
            self.intro_label.setText(
                "There is nothing to chat with on this computer yet. Get a small model running here, "
                + ("or tick below what ModelDesk found." if worth_showing(discovery) else "or add an account later.")
            )
            layout.addWidget(self.intro_label)
            layout.addWidget(self._section(LOCAL_SECTION))
            layout.addWidget(local_offer)
            local_offer.running_changed.connect(self._set_busy)
            local_offer.ready.connect(self._on_local_model_ready)
        else:
            layout.addWidget(self.intro_label)

        existing = {(a.provider_id, a.effective_base_url) for a in accounts.accounts}
        self.server_choices: list[_ServerChoice] = []
        self._already_added: list[QCheckBox] = []
        servers = [("ollama", discovery.ollama), ("llamacpp", discovery.llama_server)]
        if any(server for _kind, server in servers):
            layout.addWidget(self._section("Model servers running here"))
        for kind, server in servers:
            if server is None:
                continue
            account = server_account(kind, server)
            if kind == "ollama":
                text = f"Ollama {server.version} at {server.address}".replace("  ", " ")
                detail = "Adds an account for it: its models appear in the chat's model picker."
            else:
                text = f"llama.cpp server at {server.address}"
                detail = "Adds an account for it: chat with the model it has loaded."
            box = QCheckBox(text, objectName=f"welcome_{kind}", checked=True)
            added = (account.provider_id, account.effective_base_url) in existing
            if added:
                box.setChecked(False)
                box.setEnabled(False)
                box.setText(f"{text} (already added)")
                self._already_added.append(box)
            box.setToolTip(f"Adds the account “{account.label}” ({account.effective_base_url})")
            self.server_choices.append(_ServerChoice(account, box))
            layout.addWidget(box)
            layout.addWidget(self._detail(detail))

        self.key_list = EnvKeyList(discovery.env_keys, object_prefix="welcomeKey", parent=self)
        self.key_list.layout().setSpacing(layout.spacing())  # the boxes stand as if straight in this layout
        self.key_boxes: list[QCheckBox] = self.key_list.checkboxes
        if self.key_boxes:
            layout.addWidget(self._section("API keys in your environment"))
            layout.addWidget(self.key_list)
            layout.addWidget(
                self._detail(
                    f"Each ticked key becomes an account, its key "
                    f"{key_destination(accounts)}. "
                    "The variables themselves are left as they are."
                )
            )
        else:
            self.key_list.hide()

        self.gguf_label: QLabel | None = None
        if discovery.gguf_folders:
            layout.addWidget(self._section("Model files"))
            folders = ", ".join(
                f"{_home_relative(f.path)} ({f.count}{'+' if f.partial else ''})" for f in discovery.gguf_folders
            )
            count = discovery.gguf_count
            self.gguf_label = QLabel(
                f"{count} GGUF model file{'s' if count != 1 else ''} in {folders}. "
                "They are listed under “GGUF files”, ready for a llama.cpp server.",
                objectName="welcomeGguf",
                wordWrap=True,
            )
            self.gguf_label.setTextFormat(Qt.TextFormat.PlainText)
            layout.addWidget(self.gguf_label)

        self.status_label = self._status_line("welcomeStatus")
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.add_button = QPushButton("Add selected", objectName="addSelected", default=True)
        self.skip_button = QPushButton("Skip", objectName="skip", autoDefault=False)
        self.buttons = self._answer_buttons(self.add_button, self.skip_button)
        layout.addSpacing(6)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)

        for box in self.checkboxes:
            box.toggled.connect(self._update_buttons)
        self.add_button.clicked.connect(self._on_add_clicked)
        self.add_button.setVisible(bool(self.checkboxes))
        self.add_button.setDefault(local_offer is None)  # Return sets up the local model
        if not self.checkboxes:
            self.skip_button.setText("Not now")
        self._update_buttons()

    # --- reading ---------------------------------------------------------------------------------

    @property
    def checkboxes(self) -> list[QCheckBox]:
        return [choice.box for choice in self.server_choices] + self.key_boxes

    def selected_accounts(self) -> list[Account]:
        return [
            c.account
            for c in self.server_choices
            if c.box.isChecked() and not any(c.box is added for added in self._already_added)
        ]

    def selected_keys(self) -> list[EnvKey]:
        return self.key_list.selected()

    # --- slots -----------------------------------------------------------------------------------

    def _on_add_clicked(self) -> None:
        self._tasks.spawn(self.add_selected())

    def _on_local_model_ready(self, _account_id: str, _model: str) -> None:
        self._tasks.spawn(self._record_declined(self.local_model_chosen, "the local model offer was taken"))

    # --- actions ---------------------------------------------------------------------------------

    async def add_selected(self) -> list[str]:
        """Create exactly the ticked accounts; returns their ids (also sent with `accounts_added`)."""
        servers, keys = self.selected_accounts(), self.selected_keys()
        if self._busy or not (servers or keys):
            return []
        self._set_busy(True)
        created: list[str] = []
        try:
            for account in servers:
                await self._accounts.save_account(account)
                created.append(account.id)
            if keys:
                created += [a.id for a in await self._accounts.import_env_keys(keys)]
            else:
                await self._accounts.decline_env_import()
        except OSError as exc:
            self._show_problem(
                f"Not everything was added: the settings file could not be written ({exc.strerror or exc})."
            )
            self._set_busy(False)
            return created
        self.accounts_added.emit(created)
        super().accept()
        return created

    async def skip(self) -> None:
        """ "Skip", Escape and the close button: add nothing, do not ask again."""
        await self._record_declined(self.skipped, "the welcome screen was skipped")

    _decline = skip

    # --- inside ----------------------------------------------------------------------------------

    def _section(self, text: str) -> QLabel:
        label = QLabel(text)
        font = label.font()
        font.setBold(True)
        label.setFont(font)
        label.setContentsMargins(0, 8, 0, 0)
        return label

    def _detail(self, text: str) -> QLabel:
        label = QLabel(text, wordWrap=True, foregroundRole=QPalette.ColorRole.PlaceholderText)
        # Lined up under the checkbox's text, not its box.
        label.setContentsMargins(self.style().pixelMetric(self.style().PixelMetric.PM_IndicatorWidth) + 8, 0, 0, 2)
        return label

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy or (self.local_offer is not None and self.local_offer.running)
        busy = self._busy
        self.skip_button.setEnabled(not busy)
        for box in self.checkboxes:
            box.setEnabled(not busy and not any(box is added for added in self._already_added))
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.add_button.setEnabled(not self._busy and bool(self.selected_accounts() or self.selected_keys()))


def worth_showing(discovery: Discovery) -> bool:
    """Only something that can be added earns a dialog; folders alone are not enough."""
    return bool(discovery.ollama or discovery.llama_server or discovery.env_keys)


async def offer_welcome(
    parent: QWidget | None,
    accounts: AccountService,
    *,
    http: httpx.AsyncClient | None = None,
    environ: Mapping[str, str] | None = None,
    local_offer: LocalOfferFactory | None = None,
) -> WelcomeDialog | None:
    """On a first run (no accounts, the offer never answered) look around and open the welcome.

    When no model server runs here, `local_offer` makes its first offer (a model for this
    machine). Returns the open dialog (it deletes itself when answered), or None when it is not
    a first run or there is nothing to offer.
    """
    if accounts.accounts or accounts.env_import_offered:
        return None
    discovery = await discover(http=http, environ=environ)
    offer = None
    if local_offer is not None and not (discovery.ollama or discovery.llama_server) and not accounts.accounts:
        offer = await local_offer()
    if not (worth_showing(discovery) or offer is not None) or accounts.accounts:
        if offer is not None:
            offer.deleteLater()
        return None
    dialog = WelcomeDialog(discovery, accounts=accounts, local_offer=offer, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


async def offer_first_run(
    parent: QWidget | None,
    accounts: AccountService,
    *,
    http: httpx.AsyncClient | None = None,
    local_offer: LocalOfferFactory | None = None,
) -> QWidget | None:
    """A first run (no accounts yet): offer what is on this machine; nothing added without consent.

    The welcome when it found something or has a local model to offer; else the offer of the API
    keys in the environment.
    """
    from desktop_app.ui.accounts.env_import import maybe_offer_env_import

    dialog = await offer_welcome(parent, accounts, http=http, local_offer=local_offer)
    return dialog if dialog is not None else maybe_offer_env_import(parent, accounts)
