"""One column of a comparison: its target and model, the parameters it unlinked, its transcript,
its own Stop, and the buttons that keep its reply."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.chat import ChatParams
from desktop_app.domain.compare import CompareColumn
from desktop_app.domain.conversations import StoredMessage
from desktop_app.ui.chat.models import ModelPickerModel
from desktop_app.ui.chat.params import ParamsPanel
from desktop_app.ui.chat.transcript import TranscriptView

LETTERS = "ABCD"


def overrides_between(shared: ChatParams, own: ChatParams) -> dict[str, Any]:
    """The parameters in which `own` differs from `shared` (JSON values): what a column unlinked."""
    a, b = shared.model_dump(mode="json"), own.model_dump(mode="json")
    return {name: value for name, value in b.items() if a[name] != value}


class ColumnParamsDialog(QDialog):
    """A column's own parameters: whatever differs from the conversation's is unlinked on OK."""

    def __init__(self, *, shared: ChatParams, own: ChatParams, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Parameters of {title}")
        self._shared = shared
        self.panel = ParamsPanel()
        self.panel.set_params(own)
        self.link_button = QPushButton("Link all to the conversation's")
        self.link_button.clicked.connect(lambda: self.panel.set_params(self._shared))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("A parameter set apart from the conversation's is unlinked for this column."))
        layout.addWidget(self.panel)
        layout.addWidget(self.link_button)
        layout.addWidget(buttons)

    def overrides(self) -> dict[str, Any]:
        return overrides_between(self._shared, self.panel.params())


class CompareColumnView(QFrame):
    """Knows its lane (1..4) and shows it; the compare view runs its stream."""

    stop_requested = Signal()
    remove_requested = Signal()
    continue_requested = Signal()  # the user keeps this reply; the comparison goes on from it
    keep_only_requested = Signal()  # ... and it becomes an ordinary conversation
    target_changed = Signal()

    def __init__(self, *, lane: int, picker_model: ModelPickerModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane = lane
        self.setObjectName("compareColumn")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.overrides: dict[str, Any] = {}
        self.last_reply: StoredMessage | None = None  # the reply of the last turn, as stored
        self._picker_model = picker_model
        self._target: tuple[str, str] | None = None
        self._blind = False
        self._removable = True
        self._streaming = False
        self.title = QLabel()
        self.title.setObjectName("compareColumnTitle")
        self.title.setStyleSheet("QLabel#compareColumnTitle { font-weight: bold; }")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.picker = QComboBox()
        self.picker.setModel(picker_model)
        self.picker.setMinimumContentsLength(12)
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.params_button = QPushButton("Parameters…")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove this column: a comparison has two to four, fixed by its first turn")
        self.transcript = TranscriptView()
        self.continue_button = QPushButton("Continue with this")
        self.continue_button.setToolTip("Every column goes on from this reply")
        self.keep_only_button = QPushButton("Keep only this")
        self.keep_only_button.setToolTip("End the comparison: an ordinary conversation that goes on from this reply")
        self.set_can_keep(False)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.picker, 1)
        second = QHBoxLayout()
        second.addWidget(self.params_button)
        second.addStretch(1)
        second.addWidget(self.stop_button)
        second.addWidget(self.remove_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.continue_button)
        bottom.addWidget(self.keep_only_button)
        bottom.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(bottom)
        self.stop_button.clicked.connect(self.stop_requested)
        self.remove_button.clicked.connect(self.remove_requested)
        self.continue_button.clicked.connect(self.continue_requested)
        self.keep_only_button.clicked.connect(self.keep_only_requested)
        self.picker.currentIndexChanged.connect(self._on_picker_changed)
        picker_model.modelReset.connect(self._on_picker_model_reset)
        self._show_title()

    # --- target and parameters -----------------------------------------------------------------

    def set_target(self, account_id: str, model: str) -> bool:
        self._target = (account_id, model)
        row = self._picker_model.row_of(account_id, model)
        self.picker.blockSignals(True)
        self.picker.setCurrentIndex(row)
        self.picker.blockSignals(False)
        self._show_title()
        return row >= 0

    def target(self) -> tuple[str, str] | None:
        return self._target

    def column(self) -> CompareColumn:
        account_id, model = self._target or ("", "")
        return CompareColumn(account_id=account_id, model=model, overrides=dict(self.overrides))

    def set_overrides(self, overrides: dict[str, Any]) -> None:
        self.overrides = dict(overrides)
        self._show_title()

    def _on_picker_changed(self, row: int) -> None:
        entry = self._picker_model.entry_at(row)
        if entry is not None:
            self._target = (entry.account_id, entry.model)
            self._show_title()
            self.target_changed.emit()

    def _on_picker_model_reset(self) -> None:
        if self._target is not None:
            self.set_target(*self._target)

    # --- look ----------------------------------------------------------------------------------

    @property
    def letter(self) -> str:
        return LETTERS[self.lane - 1]

    def set_blind(self, blind: bool) -> None:
        """Blind: the column is only its letter (no model, no target picker) until the user votes."""
        self._blind = blind
        self.picker.setVisible(not blind)
        self.params_button.setVisible(not blind)
        self._show_title()

    def label(self) -> str:
        """What the summary and the buttons call this column."""
        if self._blind or self._target is None or not self._target[1]:
            return self.letter
        return f"{self.letter} · {self._target[1]}"

    def _show_title(self) -> None:
        self.title.setText(self.letter)
        unlinked = ", ".join(name.replace("_", " ") for name in sorted(self.overrides))
        self.params_button.setText(f"Own: {unlinked}…" if unlinked else "Parameters…")
        self.params_button.setToolTip(
            f"Unlinked from the conversation's parameters: {unlinked}" if unlinked else "The conversation's parameters"
        )

    def set_streaming(self, streaming: bool) -> None:
        self._streaming = streaming
        self.stop_button.setEnabled(streaming)
        self.picker.setEnabled(not streaming)
        self.params_button.setEnabled(not streaming)
        self._enable_remove()

    def set_can_keep(self, can: bool) -> None:
        self.continue_button.setEnabled(can)
        self.keep_only_button.setEnabled(can)

    def set_removable(self, removable: bool) -> None:
        # Disabled, not hidden: a hidden button narrows the column, the pane's splitters move, and
        # that relayout repainted the whole window as a first turn's requests were going out.
        self._removable = removable
        self._enable_remove()

    def _enable_remove(self) -> None:
        self.remove_button.setEnabled(self._removable and not self._streaming)
