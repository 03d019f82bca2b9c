"""The Tools tab beside the parameters: the functions offered to the model, tool_choice, parallel calls.

Functions are added one at a time in a small form (name, description, JSON Schema parameters) or
all at once from a pasted OpenAI `tools` array. What cannot be a function is said in one sentence
under the form, and what was typed stays.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.tools import TOOL_CHOICES, ToolSpec, parse_tools, tool_spec
from desktop_app.ui.theme import set_tone

_EMPTY_SCHEMA = '{\n  "type": "object",\n  "properties": {}\n}'


class ToolsTab(QWidget):
    changed = Signal()  # the user changed the tools or how they may be called

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tools: list[ToolSpec] = []
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        # A long description wraps in the column's width rather than scrolling sideways.
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.name = QLineEdit()
        self.name.setPlaceholderText("get_weather")
        self.description = QLineEdit()
        self.description.setPlaceholderText("What it does (optional)")
        self.parameters = QPlainTextEdit(_EMPTY_SCHEMA)
        self.parameters.setFixedHeight(90)
        self.add_button = QPushButton("Add function")
        self.remove_button = QPushButton("Remove")
        self.pasted = QPlainTextEdit()
        self.pasted.setPlaceholderText('Or paste an OpenAI "tools" array here')
        self.pasted.setFixedHeight(60)
        self.paste_button = QPushButton("Use pasted tools")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.hide()
        set_tone(self.problem, "error")
        self.tool_choice = QComboBox()
        self.parallel = QCheckBox("Allow several calls in one reply")
        self.parallel.setChecked(True)

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Description", self.description)
        form.addRow("Parameters", self.parameters)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        choice = QFormLayout()
        choice.addRow("Tool choice", self.tool_choice)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Functions the model may call"))
        layout.addWidget(self.list)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.pasted)
        layout.addWidget(self.paste_button)
        layout.addWidget(self.problem)
        layout.addLayout(choice)
        layout.addWidget(self.parallel)
        layout.addStretch(1)

        self.add_button.clicked.connect(self._on_add_clicked)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.paste_button.clicked.connect(self._on_paste_clicked)
        self.list.currentRowChanged.connect(self._on_list_row_changed)
        self.tool_choice.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.parallel.toggled.connect(lambda _on: self.changed.emit())
        self._refill("auto")

    # --- values --------------------------------------------------------------------------------

    def tools(self) -> tuple[ToolSpec, ...]:
        return tuple(self._tools)

    def choice(self) -> str:
        return str(self.tool_choice.currentData() or "auto")

    def set_values(self, tools: tuple[ToolSpec, ...], choice: str, parallel: bool) -> None:
        """Show a conversation's or a preset's tools (no `changed`)."""
        self.blockSignals(True)
        try:
            self._tools = list(tools)
            self.parallel.setChecked(parallel)
            self._refill(choice)
            self._say("")
        finally:
            self.blockSignals(False)

    # --- the form ------------------------------------------------------------------------------

    def _on_add_clicked(self) -> None:
        try:
            parameters = json.loads(self.parameters.toPlainText() or "{}")
        except json.JSONDecodeError as exc:
            self._say(f"The parameters are not valid JSON ({exc.msg} at line {exc.lineno}).")
            return
        try:
            spec = tool_spec(self.name.text().strip(), self.description.text().strip(), parameters)
        except ValueError as exc:
            self._say(str(exc))
            return
        names = [t.name for t in self._tools]
        if spec.name in names:
            self._tools[names.index(spec.name)] = spec
        else:
            self._tools.append(spec)
        self._say("")
        self._refill(self.choice())
        self.changed.emit()

    def _on_remove_clicked(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self._tools):
            del self._tools[row]
            self._refill(self.choice())
            self.changed.emit()

    def _on_paste_clicked(self) -> None:
        try:
            tools = parse_tools(self.pasted.toPlainText())
        except ValueError as exc:
            self._say(str(exc))
            return
        self._tools = list(tools)
        self.pasted.clear()
        self._say("")
        self._refill(self.choice())
        self.changed.emit()

    def _on_list_row_changed(self, row: int) -> None:
        if 0 <= row < len(self._tools):
            spec = self._tools[row]
            self.name.setText(spec.name)
            self.description.setText(spec.description)
            self.description.setCursorPosition(0)  # its start shows, not its end
            self.parameters.setPlainText(json.dumps(spec.parameters, indent=2, ensure_ascii=False))

    def _refill(self, choice: str) -> None:
        """The list and the tool_choice box after the tools changed; a choice gone becomes auto."""
        self.list.clear()
        for spec in self._tools:
            self.list.addItem(f"{spec.name} — {spec.description}" if spec.description else spec.name)
        self.tool_choice.blockSignals(True)
        self.tool_choice.clear()
        for value in TOOL_CHOICES:
            self.tool_choice.addItem(value, value)
        for spec in self._tools:
            self.tool_choice.addItem(f"only {spec.name}", spec.name)
        self.tool_choice.setCurrentIndex(max(0, self.tool_choice.findData(choice)))
        self.tool_choice.blockSignals(False)

    def _say(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
