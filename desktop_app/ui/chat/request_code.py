"""The "View as code" dialog: the request behind a reply as LiteLLM, SDK and curl code, with Copy."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.request_code import (
    ATTACHMENTS_VAR,
    URL_PASSWORD_VAR,
    credential_vars,
    header_env_var,
    request_snippets,
)
from desktop_app.domain.request_wire import reads_attachments
from desktop_app.domain.sent_requests import SentRequest


def _variables_note(request: SentRequest, attachments_dir: str | None = None) -> str:
    names = credential_vars(request)
    names += [header_env_var(n) for n in request.secret_headers]
    names += [URL_PASSWORD_VAR] if request.url_password else []
    if request.missing:
        gone, were, them = (
            ("1 of its messages", "was", "it")
            if request.missing == 1
            else (f"{request.missing} of its messages", "were", "them")
        )
        opening = (
            f"This request can no longer be shown in full: {gone} {were} deleted from the history or"
            f" changed since. The code below leaves {them} out."
        )
    else:
        opening = "The request as it was sent."
    if reads_attachments(request):
        where = (
            f"from {attachments_dir} (or the folder in {ATTACHMENTS_VAR})"
            if attachments_dir
            else f"from the folder in {ATTACHMENTS_VAR}"
        )
        opening += f" The attached files are read {where}."
    if request.aws_profile:
        opening += f" It signs with the AWS profile “{request.aws_profile}”."
    if not names:
        return opening if request.aws_profile else f"{opening} It needs no key."
    listed = ", ".join(names)
    return f"{opening} Keys are read from the environment: set {listed} first."


class RequestCodeDialog(QDialog):
    """One read-only, monospaced tab per snippet; Copy puts the tab shown on the clipboard."""

    copied = Signal(str)

    def __init__(
        self, request: SentRequest, parent: QWidget | None = None, *, attachments_dir: str | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("requestCodeDialog")
        self.setWindowTitle(f"View as code: {request.model}")
        self.resize(760, 560)
        self.note = note = QLabel(_variables_note(request, attachments_dir), wordWrap=True)
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tabs = QTabWidget()
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for snippet in request_snippets(request, attachments_dir):
            view = QPlainTextEdit(snippet.text)
            view.setObjectName(f"snippet-{snippet.language}")
            view.setReadOnly(True)
            view.setFont(font)
            view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            view.setTabChangesFocus(True)  # Tab moves on to the buttons instead of being typed
            view.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
            )
            self.tabs.addTab(view, snippet.title)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("&Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setDefault(True)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.reject)
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)

    def tab_titles(self) -> list[str]:
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]

    def current_text(self) -> str:
        view = self.tabs.currentWidget()
        return view.toPlainText() if isinstance(view, QPlainTextEdit) else ""

    def _on_copy_clicked(self) -> None:
        text = self.current_text()
        QGuiApplication.clipboard().setText(text)
        self.copy_button.setText("Copied")
        self.copied.emit(text)

    def _on_tabs_current_changed(self, _index: int) -> None:
        self.copy_button.setText("&Copy")
