"""The presets box above the parameters panel: save, apply, rename and delete named parameter sets.

Applying a preset fills the panel and records its name in the parameters, so the conversation
keeps which preset it started from ("Started from …" under the list).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.services.chat.presets import PresetStore
from desktop_app.ui.chat.params import ParamsPanel
from desktop_app.ui.common.events import follow
from desktop_app.ui.theme import set_tone

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


class PresetsBox(QWidget):
    def __init__(self, *, presets: PresetStore, panel: ParamsPanel, spawn: Spawn, parent=None) -> None:
        super().__init__(parent)
        self._presets = presets
        self._panel = panel
        self._spawn = spawn
        self.name_dialog: QInputDialog | None = None  # the open Save / Rename dialog, for tests
        self.confirm_box: QMessageBox | None = None  # the open Delete question

        self.combo = QComboBox()
        self.combo.setPlaceholderText("No presets yet")
        self.apply_button = QPushButton("Apply")
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Keep the system prompt, parameters and response format under a name")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete")
        self.started_from = QLabel(objectName="presetStartedFrom", wordWrap=True)
        self.started_from.setTextFormat(Qt.TextFormat.PlainText)
        self.started_from.setStyleSheet("QLabel#presetStartedFrom { color: palette(placeholder-text); }")
        self.problem = QLabel(objectName="presetProblem", wordWrap=True, visible=False)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        set_tone(self.problem, "error")

        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Preset"), 0, 0)
        layout.addWidget(self.combo, 0, 1)
        buttons = QGridLayout()
        buttons.addWidget(self.apply_button, 0, 0)
        buttons.addWidget(self.save_button, 0, 1)
        buttons.addWidget(self.rename_button, 1, 0)
        buttons.addWidget(self.delete_button, 1, 1)
        layout.addLayout(buttons, 1, 0, 1, 2)
        layout.addWidget(self.started_from, 2, 0, 1, 2)
        layout.addWidget(self.problem, 3, 0, 1, 2)
        layout.setColumnStretch(1, 1)

        self.apply_button.clicked.connect(lambda: self.apply(self.combo.currentText()))
        self.save_button.clicked.connect(self._on_save_clicked)
        self.rename_button.clicked.connect(self._on_rename_clicked)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.combo.currentIndexChanged.connect(self._enable_buttons)
        panel.loaded.connect(self._show_started_from)
        follow(self, presets.on_changed, self._reload)
        self._reload()
        self._show_started_from()

    def _reload(self) -> None:
        current = self.combo.currentText()
        self.combo.blockSignals(True)
        try:
            self.combo.clear()
            self.combo.addItems([p.name for p in self._presets.presets])
            self.combo.setCurrentIndex(self.combo.findText(current) if current else -1)
        finally:
            self.combo.blockSignals(False)
        self._enable_buttons()

    def _enable_buttons(self) -> None:
        chosen = self._presets.find(self.combo.currentText()) is not None
        for button in (self.apply_button, self.rename_button, self.delete_button):
            button.setEnabled(chosen)

    def _show_started_from(self) -> None:
        name = self._panel.preset
        self.started_from.setText(f"Started from “{name}”" if name else "")
        self.started_from.setVisible(bool(name))

    def _say(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    # --- actions (tests call these directly) ----------------------------------------------------

    def apply(self, name: str) -> bool:
        """Fill the panel with preset `name`; False (and a sentence) when there is none of that name."""
        preset = self._presets.find(name)
        if preset is None:
            self._say(f"There is no preset named “{name}” any more.")
            return False
        self._say("")
        self._panel.set_params(preset.params.model_copy(update={"preset": preset.name}))
        self._panel.changed.emit()
        return True

    async def save_current(self, name: str) -> None:
        """Keep what the panel holds as preset `name` (one of that name is replaced)."""
        try:
            preset = await self._presets.save(name, self._panel.all_params())  # hidden rows too
        except ValueError as exc:
            self._say(str(exc))
            return
        except OSError as exc:
            self._say(f"The preset could not be saved: {exc.strerror or exc}.")
            return
        self._say("")
        self.combo.setCurrentIndex(self.combo.findText(preset.name))

    async def rename(self, old: str, new: str) -> None:
        try:
            renamed = await self._presets.rename(old, new)
        except ValueError as exc:
            self._say(str(exc))
            return
        except OSError as exc:
            self._say(f"The preset could not be renamed: {exc.strerror or exc}.")
            return
        self._say("")
        self.combo.setCurrentIndex(self.combo.findText(renamed.name))

    async def delete(self, name: str) -> None:
        try:
            await self._presets.delete(name)
        except OSError as exc:
            self._say(f"The preset could not be deleted: {exc.strerror or exc}.")
            return
        self._say("")

    # --- dialogs (non-modal: open() + signals) --------------------------------------------------

    def _ask_name(self, title: str, label: str, text: str, then: Callable[[str], Coroutine[Any, Any, Any]]) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        dialog.setTextValue(text)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda value: self._spawn(then(value)))
        dialog.finished.connect(lambda _result: setattr(self, "name_dialog", None))
        self.name_dialog = dialog
        dialog.open()

    def _on_save_clicked(self) -> None:
        suggested = self.combo.currentText() or self._panel.preset
        self._ask_name(
            "Save preset",
            "Name (a preset of the same name is replaced)",
            suggested,
            self.save_current,
        )

    def _on_rename_clicked(self) -> None:
        old = self.combo.currentText()
        if self._presets.find(old) is None:
            return
        self._ask_name("Rename preset", "New name", old, lambda new: self.rename(old, new))

    def _on_delete_clicked(self) -> None:
        name = self.combo.currentText()
        if self._presets.find(name) is None:
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Delete preset",
            f"Delete the preset “{name}”? Conversations that started from it keep their parameters.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.accepted.connect(lambda: self._spawn(self.delete(name)))
        box.finished.connect(lambda _result: setattr(self, "confirm_box", None))
        self.confirm_box = box
        box.open()


def params_column(presets_box: PresetsBox, panel: ParamsPanel) -> QWidget:
    """The right-hand column: presets above the parameters, scrolling when the window is short."""
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 4, 0)
    layout.addWidget(presets_box)
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    layout.addWidget(line)
    tabs = QTabWidget()
    tabs.addTab(panel, "Parameters")
    tabs.addTab(panel.tools_tab, "Tools")
    layout.addWidget(tabs, 1)
    scroll = QScrollArea()
    scroll.setWidget(column)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    # Never narrower than the column itself: it scrolls down, never sideways.
    scroll.setMinimumWidth(column.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
    return scroll
