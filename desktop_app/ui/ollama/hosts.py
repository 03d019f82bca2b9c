"""The Ollama pane's host line: which host is shown, whether each one answers, and adding or
removing a remote host (with an optional bearer key for one behind an authenticating proxy)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import DomainError
from desktop_app.domain.ollama import HostStatus, OllamaHost, normalize_host_url
from desktop_app.services.local.ollama_hosts import OllamaHosts, same_url
from desktop_app.ui.common.dialogs import ask_to_confirm
from desktop_app.ui.common.events import follow
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.theme import colours, set_tone

HostRole = Qt.ItemDataRole.UserRole + 1


def _dot(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


class AddHostDialog(QDialog):
    """Address, name and an optional key; `host_entered(url, label, key)` on OK (opened with open())."""

    host_entered = Signal(str, str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="addHostDialog", windowTitle="Add an Ollama host")
        self.url_edit = QLineEdit(objectName="hostUrl", placeholderText="10.0.0.5:11434 or https://ollama.example.com")
        self.label_edit = QLineEdit(objectName="hostLabel", placeholderText="Workstation")
        self.key_edit = QLineEdit(
            objectName="hostKey",
            placeholderText="Only for a host behind an auth proxy",
            echoMode=QLineEdit.EchoMode.Password,
        )
        hint = QLabel("The key is kept in the system keyring and sent as a bearer token.", wordWrap=True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        form = QFormLayout()
        form.addRow("Address", self.url_edit)
        form.addRow("Name", self.label_edit)
        form.addRow("Key (optional)", self.key_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self._on_accepted)
        self.buttons.rejected.connect(self.reject)
        self.url_edit.textChanged.connect(self._update)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        self._update()

    def _update(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.url_edit.text().strip()))

    def _on_accepted(self) -> None:
        self.host_entered.emit(self.url_edit.text().strip(), self.label_edit.text().strip(), self.key_edit.text())
        self.key_edit.clear()
        self.accept()


class HostBar(QWidget):
    """A host picker with each host's state, the chosen host's sentence, and Add / Remove.

    Without `hosts` (a pane made for one service) it shows that one host and no Add / Remove.
    """

    host_chosen = Signal(object)  # OllamaHost
    message = Signal(str, bool)  # a sentence for the pane's status line, is it an error

    def __init__(self, *, current: OllamaHost, hosts: OllamaHosts | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hosts = hosts
        self._current = current
        self._statuses: dict[str, HostStatus] = {}
        self._tasks = TaskOwner("HostBar")
        self._dialog: AddHostDialog | None = None
        self._confirm: QMessageBox | None = None
        self.combo = QComboBox(objectName="hostCombo", toolTip="The Ollama host this pane shows")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.status_label = QLabel("Checking Ollama…", objectName="ollamaHost", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.add_button = QPushButton(
            "Add host…", objectName="addHost", toolTip="Add a remote Ollama, optionally with a key"
        )
        self.remove_button = QPushButton(
            "Remove host…", objectName="removeHost", toolTip="Forget the chosen remote host and its key"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.status_label, 1)
        layout.addWidget(self.add_button)
        layout.addWidget(self.remove_button)
        self.add_button.setVisible(hosts is not None)
        self.remove_button.setVisible(hosts is not None)
        self.add_button.clicked.connect(self.open_add_dialog)
        self.remove_button.clicked.connect(self._open_remove_dialog)
        self.combo.activated.connect(self._on_activated)
        if hosts is not None:
            follow(self, hosts.on_hosts_changed, self.reload)
        self.reload()

    # --- public --------------------------------------------------------------------------------

    @property
    def current(self) -> OllamaHost:
        return self._current

    @property
    def add_dialog(self) -> AddHostDialog | None:
        return self._dialog

    @property
    def remove_dialog(self) -> QMessageBox | None:
        return self._confirm

    def hosts(self) -> list[OllamaHost]:
        return [self.combo.itemData(i, HostRole) for i in range(self.combo.count())]

    def reload(self) -> None:
        """List the hosts again (accounts changed), keeping the chosen one when it is still there."""
        hosts = self._hosts.hosts() if self._hosts is not None else [self._current]
        chosen = next((h for h in hosts if same_url(h.url, self._current.url)), None)
        self.combo.blockSignals(True)
        self.combo.clear()
        for host in hosts:
            self.combo.addItem(f"{host.label} · {host.address}")
            self.combo.setItemData(self.combo.count() - 1, host, HostRole)
            self._decorate(self.combo.count() - 1)
        self.combo.setCurrentIndex(hosts.index(chosen) if chosen is not None else 0)
        self.combo.blockSignals(False)
        self._update_remove()
        if chosen is None:  # the host shown was removed: show the first
            self._current = hosts[0]
            self.host_chosen.emit(self._current)
        else:
            self._current = chosen

    def choose(self, url: str) -> bool:
        for index, host in enumerate(self.hosts()):
            if same_url(host.url, url):
                self.combo.setCurrentIndex(index)
                self._on_activated(index)
                return True
        return False

    def set_status(self, status: HostStatus) -> None:
        """Record a host's state; the chosen host's also goes in the sentence beside the picker."""
        self._statuses[normalize_host_url(status.url)] = status
        for index, host in enumerate(self.hosts()):
            if same_url(host.url, status.url):
                self._decorate(index)
        if same_url(status.url, self._current.url):
            self.status_label.setText(status.sentence)
            set_tone(self.status_label, "ok" if status.reachable else "error")

    def status_of(self, url: str) -> HostStatus | None:
        return self._statuses.get(normalize_host_url(url))

    def open_add_dialog(self) -> AddHostDialog:
        if self._dialog is None:
            self._dialog = AddHostDialog(self)
            self._dialog.host_entered.connect(lambda url, label, key: self._tasks.spawn(self.add_host(url, label, key)))
        self._dialog.url_edit.clear()
        self._dialog.label_edit.clear()
        self._dialog.open()
        return self._dialog

    async def add_host(self, url: str, label: str = "", key: str = "") -> OllamaHost | None:
        assert self._hosts is not None
        try:
            host = await self._hosts.add(url=url, label=label, key=key)
        except DomainError as exc:
            self.message.emit(f"{exc.message} {exc.action}".strip(), True)
            return None
        self.choose(host.url)
        self.message.emit(f"Added {host.label}.", False)
        return host

    async def remove_host(self, host: OllamaHost) -> bool:
        assert self._hosts is not None
        try:
            await self._hosts.remove(host)
        except DomainError as exc:
            self.message.emit(f"{exc.message} {exc.action}".strip(), True)
            return False
        self._statuses.pop(normalize_host_url(host.url), None)
        self.message.emit(f"Removed {host.label}.", False)
        return True

    async def aclose(self) -> None:
        for dialog in (self._dialog, self._confirm):
            if dialog is not None:  # the question forgets itself when it finishes, then deletes itself
                dialog.reject()
        await self._tasks.aclose()

    # --- inside --------------------------------------------------------------------------------

    def _on_activated(self, index: int) -> None:
        host = self.combo.itemData(index, HostRole)
        if host is None:
            return
        changed = not same_url(host.url, self._current.url)
        self._current = host
        self._update_remove()
        status = self.status_of(host.url)
        if status is not None:
            self.set_status(status)
        else:
            self.status_label.setText(f"Checking {host.address}…")
            set_tone(self.status_label, None)
        if changed:
            self.host_chosen.emit(host)

    def _decorate(self, index: int) -> None:
        host: OllamaHost = self.combo.itemData(index, HostRole)
        status = self.status_of(host.url)
        if status is None:
            colour, tip = colours().dot_unknown, f"{host.address}: not checked yet"
        elif status.reachable:
            colour, tip = colours().dot_up, status.sentence
        else:
            colour, tip = colours().dot_down, status.sentence
        self.combo.setItemIcon(index, _dot(colour))
        self.combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the dots are drawn in the theme's colours
            for index in range(self.combo.count()):
                self._decorate(index)

    def _update_remove(self) -> None:
        removable = self._hosts is not None and not same_url(self._current.url, self._hosts.local.url)
        self.remove_button.setEnabled(removable)

    def _open_remove_dialog(self) -> None:
        if self._confirm is not None or self._hosts is None:
            return
        host = self._current
        self._confirm = ask_to_confirm(
            self,
            title="Remove host",
            text=f"Remove {host.label} ({host.address})?",
            object_name="removeHostDialog",
            informative="Its key is deleted from the keyring; models on that host are not touched.",
            action="Remove",
            on_answer=lambda confirmed: self._on_remove_finished(confirmed, host),
        )

    def _on_remove_finished(self, confirmed: bool, host: OllamaHost) -> None:
        self._confirm = None
        if confirmed:
            self._tasks.spawn(self.remove_host(host))
