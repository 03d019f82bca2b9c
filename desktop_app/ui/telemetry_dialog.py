"""Settings > Telemetry export…: where spans of each request go (an OTLP/HTTP endpoint), or nowhere.

Off by default. Credential-like headers (Authorization, api-key...) go to the keyring; this dialog
never shows their values again, only that they are kept ("<kept in the keyring>" as the value
keeps them as they are).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.accounts import parse_headers
from desktop_app.domain.telemetry import (
    TelemetrySettings,
    check_endpoint,
    check_export_header,
    split_headers,
    traces_url,
)
from desktop_app.services.telemetry import Telemetry

KEPT = "<kept in the keyring>"
TITLE = "Telemetry export"


class TelemetryDialog(QDialog):
    """Enable, endpoint, headers, include content; Test sends one span and says what became of it."""

    def __init__(
        self, *, telemetry: Telemetry, spawn: Callable[[Coroutine[Any, Any, None]], object], parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self._telemetry, self._spawn = telemetry, spawn
        self.enabled = QCheckBox("Send a span of each request to this endpoint")
        self.endpoint = QLineEdit()
        self.endpoint.setPlaceholderText("http://127.0.0.1:4318")
        self.endpoint.setToolTip("An OpenTelemetry collector's OTLP/HTTP address; spans go to /v1/traces under it")
        self.headers = QPlainTextEdit()
        self.headers.setPlaceholderText("Authorization: Bearer …\nX-Scope-OrgID: tenant-1")
        self.headers.setTabChangesFocus(True)
        self.headers.setToolTip(
            "One header per line, Name: value. Credential headers (Authorization, api-key…) go to the keyring"
        )
        self.headers.setFixedHeight(self.fontMetrics().lineSpacing() * 4 + 12)
        self.include_content = QCheckBox("Include prompts and replies in the spans")
        self.include_content.setToolTip("Off: spans hold models, tokens and timings only. Keys are never sent.")
        intro = QLabel(
            "ModelDesk sends nothing anywhere unless you turn this on. Spans follow the OpenTelemetry "
            "GenAI conventions: one per request attempt, with the model, tokens, timings and account."
        )
        intro.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("telemetry-message")
        form = QFormLayout()
        form.addRow(self.enabled)
        form.addRow("Endpoint URL:", self.endpoint)
        form.addRow("Headers:", self.headers)
        form.addRow(self.include_content)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close)
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("Send one test span to the endpoint now")
        self.buttons.addButton(self.test_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.rejected.connect(self.reject)
        self.save_button.clicked.connect(lambda: spawn(self.save()))
        self.test_button.clicked.connect(lambda: spawn(self.test()))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())
        self._show(telemetry.settings)

    def _show(self, settings: TelemetrySettings) -> None:
        self.enabled.setChecked(settings.enabled)
        self.endpoint.setText(settings.endpoint)
        lines = [f"{n}: {v}" for n, v in settings.headers.items()] + [f"{n}: {KEPT}" for n in settings.secret_headers]
        self.headers.setPlainText("\n".join(lines))
        self.include_content.setChecked(settings.include_content)
        self._say(self._counts())

    def _counts(self) -> str:
        if not self._telemetry.active:
            return ""
        return f"Exporting: {self._telemetry.exported} spans sent, {self._telemetry.dropped} dropped."

    def _say(self, sentence: str) -> None:
        self.message.setText(sentence)

    async def _read(self) -> tuple[TelemetrySettings, dict[str, str], dict[str, str]] | None:
        """(settings, credential headers' values, every header) as typed; None after saying what is wrong."""
        try:
            endpoint = self.endpoint.text().strip()
            if endpoint:
                endpoint = check_endpoint(endpoint)
            elif self.enabled.isChecked():
                raise ValueError("type the endpoint URL, as in http://127.0.0.1:4318")
            typed = parse_headers(self.headers.toPlainText())
            stored = await self._telemetry.headers(self._telemetry.settings)
            headers = {}
            for name, value in typed.items():
                if value == KEPT and name in stored:
                    headers[name] = stored[name]
                else:
                    name, value = check_export_header(name, value)
                    headers[name] = value
            plain, secret = split_headers(headers)
            settings = TelemetrySettings(
                enabled=self.enabled.isChecked(),
                endpoint=endpoint,
                headers=plain,
                secret_headers=tuple(secret),
                include_content=self.include_content.isChecked(),
            )
        except ValueError as exc:
            self._say(_sentence(str(exc)))
            return None
        return settings, secret, headers

    async def save(self) -> None:
        read = await self._read()
        if read is None:
            return
        settings, secret, _headers = read
        await self._telemetry.save(settings, secret)
        self._show(settings)
        self._say("Saved. " + (self._counts() or "Nothing is sent anywhere."))

    async def test(self) -> None:
        read = await self._read()
        if read is None:
            return
        settings, _secret, headers = read
        if not settings.endpoint:
            self._say("Type the endpoint URL first, as in http://127.0.0.1:4318.")
            return
        self.test_button.setEnabled(False)
        self._say(f"Sending a test span to {traces_url(settings.endpoint)}…")
        try:
            self._say(await self._telemetry.send_test(settings.endpoint, headers))
        finally:
            self.test_button.setEnabled(True)


def _sentence(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


class TelemetryMenu:
    """Settings > Telemetry export…, in the Settings menu (made here when no other part made it)."""

    def __init__(
        self, window: QMainWindow, *, telemetry: Telemetry, spawn: Callable[[Coroutine[Any, Any, None]], object]
    ) -> None:
        self._window, self._telemetry, self._spawn = window, telemetry, spawn
        self.dialog: TelemetryDialog | None = None
        bar = window.menuBar()
        menu = next((a.menu() for a in bar.actions() if a.text() == "&Settings" and a.menu() is not None), None)
        if menu is None:
            menu = QMenu("&Settings", bar)
            help_action = next((a for a in bar.actions() if a.text() == "&Help"), None)
            bar.insertMenu(help_action, menu) if help_action is not None else bar.addMenu(menu)
        self.action = menu.addAction("Telemetry export…")
        self.action.setToolTip("Send spans of each request to an OpenTelemetry collector (off by default)")
        self.action.triggered.connect(self.show_dialog)

    def show_dialog(self) -> TelemetryDialog:
        if self.dialog is None:
            self.dialog = TelemetryDialog(telemetry=self._telemetry, spawn=self._spawn, parent=self._window)
        if self.dialog.isVisible():  # behind the main window: brought to the front
            self.dialog.raise_()
            self.dialog.activateWindow()
        else:
            self.dialog.show()
        return self.dialog
