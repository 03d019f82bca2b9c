"""The Ollama pane's Details box: the selected model's figures and its five read-only texts.

Until a model's details are in, only a sentence shows (which model to pick, or why its details
could not be read). The pane asks the service and says which model's details are current; this
module only lays them out.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.ollama import ModelDetails

NO_SELECTION_HINT = "Select a model to see its parameters, template, system prompt and license."


def _read_only_text(object_name: str) -> QPlainTextEdit:
    text = QPlainTextEdit(objectName=object_name, readOnly=True)
    text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    text.document().setDocumentMargin(6)
    return text


class DetailsView(QWidget):
    """One model's name, context length, capabilities and architecture, then the texts in tabs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(NO_SELECTION_HINT, objectName="detailsTitle", wordWrap=True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.context_label = QLabel(objectName="contextLength")
        self.capabilities_label = QLabel(objectName="capabilities", wordWrap=True)
        self.architecture_label = QLabel(objectName="architecture", wordWrap=True)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Context length", self.context_label)
        form.addRow("Capabilities", self.capabilities_label)
        form.addRow("Architecture", self.architecture_label)
        self.parameters_text = _read_only_text("parameters")
        self.template_text = _read_only_text("template")
        self.system_text = _read_only_text("systemPrompt")
        self.license_text = _read_only_text("license")
        self.modelfile_text = _read_only_text("modelfile")
        self.tabs = QTabWidget(objectName="detailsTabs", documentMode=True)
        for text, title in (
            (self.parameters_text, "Parameters"),
            (self.template_text, "Template"),
            (self.system_text, "System prompt"),
            (self.license_text, "License"),
            (self.modelfile_text, "Modelfile"),
        ):
            self.tabs.addTab(text, title)
        # Shown once a model's details are in; until then only the sentence above it.
        self._body = QWidget()
        body_layout = QVBoxLayout(self._body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addLayout(form)
        body_layout.addWidget(self.tabs, 1)
        self._body.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self._body, 1)
        layout.addStretch()

    def show_model(self, details: ModelDetails) -> None:
        """Fill every field from `details`, under its name in bold."""
        self._set_title(details.name, bold=True)
        self.context_label.setText(f"{details.context_length:,} tokens" if details.context_length else "—")
        self.capabilities_label.setText(", ".join(details.capabilities) or "—")
        arch = " · ".join(p for p in (details.family, details.parameter_size, details.quantization) if p)
        self.architecture_label.setText(arch or "—")
        self.parameters_text.setPlainText(details.parameters or "(none)")
        self.template_text.setPlainText(details.template or "(none)")
        self.system_text.setPlainText(details.system or "(none: the template's default applies)")
        self.license_text.setPlainText(details.license or "(none)")
        self.modelfile_text.setPlainText(details.modelfile)
        self._body.show()

    def clear(self, message: str = NO_SELECTION_HINT) -> None:
        """Empty every field and show only `message`."""
        self._set_title(message, bold=False)
        self._body.hide()
        for label in (self.context_label, self.capabilities_label, self.architecture_label):
            label.clear()
        for text in (
            self.parameters_text,
            self.template_text,
            self.system_text,
            self.license_text,
            self.modelfile_text,
        ):
            text.clear()

    def _set_title(self, text: str, *, bold: bool) -> None:
        self.title.setText(text)
        font = self.title.font()
        font.setBold(bold)
        self.title.setFont(font)
