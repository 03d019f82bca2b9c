"""The parameters panel: system prompt, sampling, limits, penalties, reasoning, stop sequences, seed,
response format.

`set_shown(params)` shows only the rows of the parameters the picked model takes (None: all of them);
a hidden row keeps its value for when it shows again, but is not sent.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.chat import (
    MIN_THINKING_BUDGET,
    ChatParams,
    ReasoningEffort,
    ResponseFormat,
    parse_json_schema,
)
from desktop_app.ui.chat.tools_tab import ToolsTab
from desktop_app.ui.theme import set_tone


class ParamsPanel(QWidget):
    changed = Signal()  # the user changed a value
    loaded = Signal()  # set_params() put in a whole set (a conversation's, a preset's)

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
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1000)
        self.top_k.setSpecialValueText("default")
        self.max_completion_tokens = QSpinBox()
        self.max_completion_tokens.setRange(0, 1_000_000)
        self.max_completion_tokens.setSpecialValueText("default")
        self.max_completion_tokens.setToolTip("Counts reasoning tokens too, where a model reasons")
        self.presence_penalty = _penalty_box()
        self.frequency_penalty = _penalty_box()
        self.reasoning_effort = QComboBox()
        self.reasoning_effort.addItem("default", "")
        for effort in ReasoningEffort:
            self.reasoning_effort.addItem(effort.value, effort.value)
        # Below Anthropic's floor stands for "off"; a budget, when set, is sent instead of the effort.
        self.thinking_budget = QSpinBox()
        self.thinking_budget.setRange(MIN_THINKING_BUDGET - 1, 1_000_000)
        self.thinking_budget.setSpecialValueText("off")
        self.thinking_budget.setToolTip("Extended thinking: tokens the model may think for; less than max tokens")
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

        self.cache_prompt = QCheckBox("Cache the system prompt and history")
        self._caching_available = True

        form = QFormLayout()
        self._form = form
        # Each row by the request parameter it sets (see domain.param_support.PANEL_PARAMS).
        self._rows: dict[str, QWidget] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "max_completion_tokens": self.max_completion_tokens,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "reasoning_effort": self.reasoning_effort,
            "thinking": self.thinking_budget,
            "seed": self.seed,
            "stop": self.stop,
            "response_format": self.response_format,
        }
        labels = {
            "temperature": "Temperature",
            "top_p": "Top p",
            "top_k": "Top k",
            "max_tokens": "Max tokens",
            "max_completion_tokens": "Max completion",
            "presence_penalty": "Presence penalty",
            "frequency_penalty": "Frequency penalty",
            "reasoning_effort": "Reasoning effort",
            "thinking": "Thinking budget",
            "seed": "Seed",
            "stop": "Stop",
            "response_format": "Response",
        }
        for name, widget in self._rows.items():
            form.addRow(labels[name], widget)
        self._shown: frozenset[str] | None = None  # None: every row
        form.addRow(self.json_schema)
        form.addRow(self.schema_problem)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("System prompt"))
        layout.addWidget(self.system_prompt)
        layout.addWidget(self.cache_prompt)
        layout.addLayout(form)
        layout.addStretch(1)

        self.response_format.currentIndexChanged.connect(self._on_format_changed)
        for spin in (
            self.temperature,
            self.top_p,
            self.top_k,
            self.max_tokens,
            self.max_completion_tokens,
            self.presence_penalty,
            self.frequency_penalty,
            self.thinking_budget,
            self.seed,
        ):
            spin.valueChanged.connect(self.changed)
        self.reasoning_effort.currentIndexChanged.connect(self.changed)
        self.cache_prompt.toggled.connect(self.changed)
        for edit in (self.system_prompt, self.stop, self.json_schema):
            edit.textChanged.connect(self.changed)
        self.json_schema.textChanged.connect(lambda: self._show_schema_problem(""))
        self.tools_tab = ToolsTab()  # shown as a tab of its own beside this panel
        self.tools_tab.changed.connect(self.changed)
        # Start at "default"/"random": a spin box starts at 0, which would send temperature 0, seed 0.
        self._preset = ""
        self.set_params(ChatParams())

    def set_shown(self, params: tuple[str, ...] | frozenset[str] | None) -> None:
        """Show the rows of `params` only (None: every row), as the picked model takes them."""
        self._shown = None if params is None else frozenset(params)
        self.tools_tab.setEnabled(self.shows("tools"))  # a model that takes no tools is sent none
        for name, widget in self._rows.items():
            self._form.setRowVisible(widget, self.shows(name))
        self._show_schema_field()

    def set_caching_available(self, available: bool) -> None:
        """Prompt caching breakpoints are Anthropic's: elsewhere the switch is greyed out (it keeps its value)."""
        self._caching_available = available
        self.cache_prompt.setEnabled(available)
        self.cache_prompt.setToolTip(_CACHE_TIP if available else _NO_CACHE_TIP)

    def shows(self, name: str) -> bool:
        """Whether the row of request parameter `name` is shown (and so sent)."""
        return self._shown is None or name in self._shown

    def _on_format_changed(self) -> None:
        self._show_schema_field()
        self._show_schema_problem("")
        self.changed.emit()

    def _show_schema_field(self) -> None:
        self.json_schema.setVisible(
            self.shows("response_format") and self.response_format.currentData() == ResponseFormat.JSON_SCHEMA.value
        )

    def check_schema(self) -> str:
        """Say beside the schema field why it cannot be sent ("" when it can, or is not used)."""
        problem = ""
        if self.shows("response_format") and self.response_format.currentData() == ResponseFormat.JSON_SCHEMA.value:
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
        """What the shown rows say; a hidden row's parameter is left to the server."""
        return self._values(shown_only=True)

    def all_params(self) -> ChatParams:
        """Every row's value, shown or not: what a preset keeps."""
        return self._values(shown_only=False)

    def _values(self, *, shown_only: bool) -> ChatParams:
        effort = self.reasoning_effort.currentData()
        values = {
            "temperature": None if self.temperature.value() < 0 else round(self.temperature.value(), 2),
            "top_p": None if self.top_p.value() <= 0 else round(self.top_p.value(), 2),
            "top_k": self.top_k.value() or None,
            "max_tokens": self.max_tokens.value() or None,
            "max_completion_tokens": self.max_completion_tokens.value() or None,
            "presence_penalty": _penalty(self.presence_penalty),
            "frequency_penalty": _penalty(self.frequency_penalty),
            "reasoning_effort": ReasoningEffort(effort) if effort else None,
            "thinking_budget": None
            if self.thinking_budget.value() < MIN_THINKING_BUDGET
            else self.thinking_budget.value(),
            "seed": None if self.seed.value() < 0 else self.seed.value(),
            "stop": tuple(line for line in self.stop.toPlainText().splitlines() if line),
        }

        def sent(name: str) -> bool:
            return not shown_only or self.shows(_ROW_OF.get(name, name))

        if sent("tools"):
            values["tools"] = self.tools_tab.tools()
            values["tool_choice"] = self.tools_tab.choice()
            values["parallel_tool_calls"] = self.tools_tab.parallel.isChecked()
        shown = {name: value for name, value in values.items() if sent(name)}
        json_format = sent("response_format")
        return ChatParams(
            system_prompt=self.system_prompt.toPlainText(),
            response_format=ResponseFormat(self.response_format.currentData() if json_format else ResponseFormat.TEXT),
            json_schema=self.json_schema.toPlainText(),
            preset=self._preset,
            cache_prompt=self.cache_prompt.isChecked() and (self._caching_available or not shown_only),
            **shown,
        )

    def set_params(self, params: ChatParams) -> None:
        self.blockSignals(True)
        try:
            self.system_prompt.setPlainText(params.system_prompt)
            self.temperature.setValue(-0.05 if params.temperature is None else params.temperature)
            self.top_p.setValue(0.0 if params.top_p is None else params.top_p)
            self.max_tokens.setValue(params.max_tokens or 0)
            self.top_k.setValue(params.top_k or 0)
            self.max_completion_tokens.setValue(params.max_completion_tokens or 0)
            for box, value in (
                (self.presence_penalty, params.presence_penalty),
                (self.frequency_penalty, params.frequency_penalty),
            ):
                box.setValue(box.minimum() if value is None else value)
            effort = params.reasoning_effort
            self.reasoning_effort.setCurrentIndex(self.reasoning_effort.findData(effort.value if effort else ""))
            self.thinking_budget.setValue(params.thinking_budget or MIN_THINKING_BUDGET - 1)
            self._preset = params.preset
            self.seed.setValue(-1 if params.seed is None else params.seed)
            self.stop.setPlainText("\n".join(params.stop))
            self.response_format.setCurrentIndex(self.response_format.findData(params.response_format.value))
            self.json_schema.setPlainText(params.json_schema)
            self.tools_tab.set_values(params.tools, params.tool_choice, params.parallel_tool_calls)
            self.cache_prompt.setChecked(params.cache_prompt)
        finally:
            self.blockSignals(False)
        self._show_schema_problem("")
        self._show_schema_field()
        self.loaded.emit()

    @property
    def preset(self) -> str:
        """The preset the panel's values started from ("" for none)."""
        return self._preset


_CACHE_TIP = (
    "Marks the system prompt and the conversation so far for Anthropic's prompt cache: later turns read"
    " them at a tenth of the input price (writing them costs a quarter more; the cache lasts 5 minutes)."
)
_NO_CACHE_TIP = "Only Claude (Anthropic) accounts take cache marks; other providers cache on their own or not at all."

# ChatParams fields set by a row named after another parameter.
_ROW_OF = {"thinking_budget": "thinking", "tool_choice": "tools", "parallel_tool_calls": "tools"}
_NO_PENALTY = -2.1  # the penalty boxes' minimum, shown as "default"


def _penalty_box() -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(_NO_PENALTY, 2.0)
    box.setSingleStep(0.1)
    box.setSpecialValueText("default")
    box.setValue(_NO_PENALTY)
    return box


def _penalty(box: QDoubleSpinBox) -> float | None:
    return None if box.value() < -2.0 else round(box.value(), 2)
