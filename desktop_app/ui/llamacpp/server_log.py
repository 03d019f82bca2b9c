"""The llama.cpp pane's "Server log" box: what the server started here prints, and a crash notice.

The notice stays hidden until that server stops by itself; then it says why and offers Restart.
The pane fills the box; this module only builds it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.theme import set_themed_style_sheet

LOG_PLACEHOLDER = "Start a server to see its log here."
LOG_BLOCKS = 2000

_CRASH_STYLE = (
    "QFrame#crashNotice {{ background: {alert_background}; border: 1px solid {alert_border}; border-radius: 4px; }}"
    " QFrame#crashNotice QLabel {{ color: {alert_text}; }}"
)


class ServerLog(QGroupBox):
    """A title ("Serving …"), the crash notice (hidden until a crash) and the log itself."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Server log", parent, objectName="logBox")
        self.crash_label = QLabel(objectName="crashMessage", wordWrap=True)
        self.crash_label.setTextFormat(Qt.TextFormat.PlainText)
        self.restart_button = QPushButton(
            "Restart", objectName="restartServer", toolTip="Start the server again with the same settings"
        )
        self.crash_notice = QFrame(objectName="crashNotice")
        set_themed_style_sheet(self.crash_notice, _CRASH_STYLE)
        crash_layout = QHBoxLayout(self.crash_notice)
        crash_layout.setContentsMargins(10, 6, 6, 6)
        crash_layout.addWidget(self.crash_label, 1)
        crash_layout.addWidget(self.restart_button)
        self.crash_notice.hide()
        self.title = QLabel("No server started here", objectName="logTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.view = QPlainTextEdit(objectName="serverLog", readOnly=True, placeholderText=LOG_PLACEHOLDER)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setMaximumBlockCount(LOG_BLOCKS)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.crash_notice)
        layout.addWidget(self.view, 1)
