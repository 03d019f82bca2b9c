"""The parameters panel: system prompt, sampling, limits, stop sequences, seed, response format."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.chat import ChatParams, ResponseFormat, parse_json_schema
from desktop_app.ui.theme import set_tone


class ParamsPanel(QWidget):
    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("System prompt (optional)")
        self.system_prompt.setFixedHeight(90)

        # The spin boxes' minimum stands for "leave it to the server" (shown as "default").
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(-0.05, 2.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setSpecialValueText("default")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.0, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setSpecialValueText("default")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(0, 1_000_000)
        self.max_tokens.setSpecialValueText("default")
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2_147_483_647)
        self.seed.setSpecialValueText("random")
        self.stop = QPlainTextEdit()
        self.stop.setPlaceholderText("Stop sequences, one per line")
        self.stop.setFixedHeight(52)
        self.response_format = QComboBox()
        for fmt, text in (
            (ResponseFormat.TEXT, "Text"),
            (ResponseFormat.JSON_OBJECT, "JSON object"),
            (ResponseFormat.JSON_SCHEMA, "JSON schema"),
        ):
            self.response_format.addItem(text, fmt.value)
        self.json_schema = QPlainTextEdit()
        self.json_schema.setPlaceholderText('{"type": "object", "properties": {...}}')
        self.json_schema.setFixedHeight(90)
        self.json_schema.setVisible(False)
        # Why the schema cannot be sent, beside it; shown when Send is refused, gone once it is edited.
        self.schema_problem = QLabel(objectName="schemaProblem", wordWrap=True, visible=False)
        set_tone(self.schema_problem, "error")
        self.schema_problem.setTextFormat(Qt.TextFormat.PlainText)

        form = QFormLayout()
        form.addRow("Temperature", self.temperature)
        form.addRow("Top p", self.top_p)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        form.addRow("Stop", self.stop)
        form.addRow("Response", self.response_format)
        form.addRow(self.json_schema)
        form.addRow(self.schema_problem)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("System prompt"))
        layout.addWidget(self.system_prompt)
        layout.addLayout(form)
        layout.addStretch(1)

        self.response_format.currentIndexChanged.connect(self._on_format_changed)
        for spin in (self.temperature, self.top_p, self.max_tokens, self.seed):
            spin.valueChanged.connect(self.changed)
        for edit in (self.system_prompt, self.stop, self.json_schema):
            edit.textChanged.connect(self.changed)
        self.json_schema.textChanged.connect(lambda: self._show_schema_problem(""))
        # Start at "default"/"random": a spin box starts at 0, which would send temperature 0, seed 0.
        self.set_params(ChatParams())

    def _on_format_changed(self) -> None:
        self.json_schema.setVisible(self.response_format.currentData() == ResponseFormat.JSON_SCHEMA.value)
        self._show_schema_problem("")
        self.changed.emit()

    def check_schema(self) -> str:
        """Say beside the schema field why it cannot be sent ("" when it can, or is not used)."""
        problem = ""
        if self.response_format.currentData() == ResponseFormat.JSON_SCHEMA.value:
            try:
                parse_json_schema(self.json_schema.toPlainText())
            except ValueError as exc:
                problem = str(exc)
        self._show_schema_problem(problem)
        return problem

    def _show_schema_problem(self, text: str) -> None:
        self.schema_problem.setText(text)
        self.schema_problem.setVisible(bool(text))

    def params(self) -> ChatParams:
        return ChatParams(
            system_prompt=self.system_prompt.toPlainText(),
            temperature=None if self.temperature.value() < 0 else round(self.temperature.value(), 2),
            top_p=None if self.top_p.value() <= 0 else round(self.top_p.value(), 2),
            max_tokens=self.max_tokens.value() or None,
            seed=None if self.seed.value() < 0 else self.seed.value(),
            stop=tuple(line for line in self.stop.toPlainText().splitlines() if line),
            response_format=ResponseFormat(self.response_format.currentData()),
            json_schema=self.json_schema.toPlainText(),
        )

    def set_params(self, params: ChatParams) -> None:
        self.blockSignals(True)
        try:
            self.system_prompt.setPlainText(params.system_prompt)
            self.temperature.setValue(-0.05 if params.temperature is None else params.temperature)
            self.top_p.setValue(0.0 if params.top_p is None else params.top_p)
            self.max_tokens.setValue(params.max_tokens or 0)
            self.seed.setValue(-1 if params.seed is None else params.seed)
            self.stop.setPlainText("\n".join(params.stop))
            self.response_format.setCurrentIndex(self.response_format.findData(params.response_format.value))
            self.json_schema.setPlainText(params.json_schema)
        finally:
            self.blockSignals(False)
        self._show_schema_problem("")
