"""The llama.cpp pane's "Start a server" form: which llama-server, which GGUF file, and how.

The form turns its fields into a `ManagedServerSpec`; the pane starts, stops and restarts the
server, and shows in `start_status` what went wrong. The form also owns the pane's file dialog: its
two Browse buttons and the pane's "Start router over folder…" open one non-modal dialog at a time.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import BadRequest
from desktop_app.domain.llamacpp import DEFAULT_CTX, ManagedServerSpec
from desktop_app.ui.llamacpp.widgets import status_label

NO_GGUF_HINT = "No GGUF files found yet: choose one with Browse…"
EXTRA_ARGS_PLACEHOLDER = "e.g. --no-jinja --chat-template gemma"


def _spin(name: str, low: int, high: int, value: int, special: str, *, tip: str, step: int = 1) -> QSpinBox:
    spin = QSpinBox(objectName=name, minimum=low, maximum=high, value=value, singleStep=step, toolTip=tip)
    spin.setSpecialValueText(special)
    spin.setGroupSeparatorShown(True)
    spin.setStepType(QAbstractSpinBox.StepType.DefaultStepType)
    return spin


class StartForm(QGroupBox):
    """The fields and buttons that start a llama-server on a GGUF file (or a router over a folder)."""

    binary_changed = Signal(str)  # the llama-server path, typed or chosen with Browse
    router_folder_chosen = Signal(str)  # a folder chosen after `choose_router_folder()`

    def __init__(self, *, binary_setting: str = "", parent: QWidget | None = None) -> None:
        super().__init__("Start a server", parent, objectName="startBox")
        self._dialog: QFileDialog | None = None
        self.binary_edit = QLineEdit(
            binary_setting, objectName="binaryPath", clearButtonEnabled=True, placeholderText="llama-server on PATH"
        )
        self.binary_edit.setAccessibleName("llama-server executable")
        self.binary_browse = QPushButton(
            "Browse…", objectName="browseBinary", toolTip="Choose the llama-server executable"
        )
        self.model_combo = QComboBox(objectName="ggufFile", accessibleName="GGUF file")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_browse = QPushButton("Browse…", objectName="browseModel", toolTip="Choose a GGUF file")
        self.model_hint = QLabel(
            NO_GGUF_HINT, objectName="noGgufHint", wordWrap=True, foregroundRole=QPalette.ColorRole.PlaceholderText
        )
        self.ctx_spin = _spin(
            "contextSize",
            0,
            1 << 20,
            DEFAULT_CTX,
            "From the model",
            step=1024,
            tip="Tokens of context per server (-c); 0 uses the model's own length",
        )
        self.threads_spin = _spin("threads", 0, 512, 0, "Auto", tip="CPU threads (-t)")
        self.gpu_spin = _spin(
            "gpuLayers", -1, 999, -1, "Auto", tip="Layers to put on the GPU (-ngl); 0 keeps everything on the CPU"
        )
        self.port_spin = _spin("port", 0, 65535, 0, "Auto (a free port)", tip="Port to listen on, on 127.0.0.1")
        self.port_spin.setGroupSeparatorShown(False)
        self.extra_args_edit = QLineEdit(
            objectName="extraArgs",
            placeholderText=EXTRA_ARGS_PLACEHOLDER,
            clearButtonEnabled=True,
            toolTip="More llama-server arguments, as on a command line",
        )
        self.start_button = QPushButton(
            "Start", objectName="startServer", default=True, toolTip="Start llama-server on the chosen GGUF file"
        )
        self.stop_button = QPushButton(
            "Stop", objectName="stopServer", enabled=False, toolTip="Stop the server started here"
        )
        self.start_status = status_label("startStatus")
        self._lay_out()
        self.binary_browse.clicked.connect(self._on_binary_browse_clicked)
        self.binary_edit.editingFinished.connect(self._on_binary_edited)
        self.model_browse.clicked.connect(self._on_model_browse_clicked)

    def _lay_out(self) -> None:
        binary_row = QHBoxLayout()
        binary_row.addWidget(self.binary_edit, 1)
        binary_row.addWidget(self.binary_browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.model_browse)
        numbers = QHBoxLayout()
        numbers.addWidget(self.ctx_spin, 1)
        numbers.addWidget(QLabel("Threads"))
        numbers.addWidget(self.threads_spin, 1)
        tuning = QHBoxLayout()
        tuning.addWidget(self.gpu_spin, 1)
        tuning.addWidget(QLabel("Port"))
        tuning.addWidget(self.port_spin, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.start_button)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("llama-server", binary_row)
        form.addRow("GGUF file", model_row)
        form.addRow("", self.model_hint)
        form.addRow("Context size", numbers)
        form.addRow("GPU layers", tuning)
        form.addRow("Extra arguments", self.extra_args_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.start_status)
        layout.addStretch(1)

    # --- the fields ------------------------------------------------------------------------------

    def set_gguf_files(self, files: Sequence[Path]) -> None:
        """Offer `files` in the GGUF combo; keeps the choice."""
        current = self.model_combo.currentData()
        paths = [Path(p) for p in files]
        if current and Path(current) not in paths:
            paths.append(Path(current))  # chosen with Browse: keep it offered
        names = [p.name for p in paths]
        self.model_combo.clear()
        for path in paths:
            label = path.name if names.count(path.name) == 1 else f"{path.name} ({path.parent.name})"
            self.model_combo.addItem(label, str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        if current:
            self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(current)))
        self.model_hint.setVisible(not paths)

    def choose_model_file(self, path: Path) -> None:
        """Offer `path` in the GGUF combo (adding it if new) and pick it."""
        index = self.model_combo.findData(str(path))
        if index < 0:
            self.model_combo.addItem(path.name, str(path))
            index = self.model_combo.count() - 1
            self.model_combo.setItemData(index, str(path), Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(index)
        self.model_hint.hide()

    def focus_model(self) -> None:
        """Put the focus where a GGUF file is chosen: the combo, or Browse when it is empty."""
        (self.model_combo if self.model_combo.count() else self.model_browse).setFocus()

    def spec(self, models_dir: Path | None = None, *, env: Mapping[str, str]) -> ManagedServerSpec:
        """The form as a spec: on the chosen GGUF file, or a router over `models_dir`."""
        model = self.model_combo.currentData()
        if models_dir is None and not model:
            raise BadRequest("Pick a GGUF file first: choose one from the list or with Browse….")
        try:
            extra = tuple(shlex.split(self.extra_args_edit.text()))
        except ValueError as exc:
            raise BadRequest(f"The extra arguments could not be read ({exc}).", "Check the quotes in them.") from exc
        return ManagedServerSpec(
            model=None if models_dir is not None else Path(model),
            models_dir=models_dir,
            binary=self.binary_edit.text().strip(),
            ctx=self.ctx_spin.value(),
            threads=self.threads_spin.value() or None,
            gpu_layers=None if self.gpu_spin.value() < 0 else self.gpu_spin.value(),
            port=self.port_spin.value(),
            extra_args=extra,
            env=env,
        )

    def _on_binary_edited(self) -> None:
        self.binary_changed.emit(self.binary_edit.text().strip())

    # --- the file dialog ---------------------------------------------------------------------------

    @property
    def file_dialog(self) -> QFileDialog | None:
        """The open Browse / folder dialog, if any."""
        return self._dialog

    def choose_router_folder(self) -> None:
        """Ask for a folder of GGUF files; `router_folder_chosen` says which."""
        self._open_dialog(
            "Choose a folder of GGUF files for the router",
            "",
            "",
            self.router_folder_chosen.emit,
            mode=QFileDialog.FileMode.Directory,
        )

    def close_dialog(self) -> None:
        if self._dialog is not None:
            self._dialog.reject()

    def _on_model_browse_clicked(self) -> None:
        current = self.model_combo.currentData()
        self._open_dialog(
            "Choose a GGUF model",
            str(Path(current).parent) if current else "",
            "GGUF models (*.gguf);;All files (*)",
            self._on_model_file_selected,
            mode=QFileDialog.FileMode.ExistingFile,
        )

    def _on_binary_browse_clicked(self) -> None:
        current = self.binary_edit.text().strip()
        self._open_dialog(
            "Choose the llama-server executable",
            str(Path(current).parent) if current else "",
            "",
            self._on_binary_file_selected,
            mode=QFileDialog.FileMode.ExistingFile,
        )

    def _on_model_file_selected(self, path: str) -> None:
        self.choose_model_file(Path(path))

    def _on_binary_file_selected(self, path: str) -> None:
        self.binary_edit.setText(path)
        self._on_binary_edited()

    def _open_dialog(
        self,
        title: str,
        directory: str,
        filters: str,
        on_selected: Callable[[str], None],
        *,
        mode: QFileDialog.FileMode,
    ) -> None:
        if self._dialog is not None:
            self._dialog.activateWindow()
            return
        dialog = QFileDialog(self, title, directory, filters)
        dialog.setObjectName("llamacppFileDialog")
        dialog.setFileMode(mode)
        if mode is QFileDialog.FileMode.Directory:
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(on_selected)
        dialog.finished.connect(self._on_dialog_finished)
        self._dialog = dialog
        dialog.open()

    def _on_dialog_finished(self, _result: int) -> None:
        self._dialog = None
