"""The Local models pane's two dialogs, Delete and Copy, opened non-modally (open() + signals)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from desktop_app.ui.common.dialogs import ask_to_confirm


class ModelDialogsMixin:
    """OllamaPane's Delete and Copy dialogs; at most one of each is open, and aclose() rejects it."""

    @property
    def delete_dialog(self) -> QMessageBox | None:
        return self._delete_dialog

    @property
    def copy_dialog(self) -> QInputDialog | None:
        return self._copy_dialog

    def _open_delete_dialog(self, name: str) -> None:
        if self._delete_dialog is not None:
            self._delete_dialog.activateWindow()
            return
        self._delete_dialog = ask_to_confirm(
            self,
            title="Delete model",
            text=f"Delete {name} from Ollama?",
            object_name="deleteDialog",
            informative="Its files are removed from the disk; pulling it again downloads it again.",
            action="Delete",
            on_answer=lambda confirmed: self._on_delete_dialog_finished(confirmed, name),
        )

    def _on_delete_dialog_finished(self, confirmed: bool, name: str) -> None:
        self._delete_dialog = None
        if confirmed:
            self._tasks.spawn(self.delete(name, confirmed=True))

    def _open_copy_dialog(self, source: str) -> None:
        if self._copy_dialog is not None:
            self._copy_dialog.activateWindow()
            return
        dialog = QInputDialog(self)
        dialog.setObjectName("copyDialog")
        dialog.setWindowTitle("Copy model")
        dialog.setLabelText(f"Name of the copy of {source}:")
        base, _, tag = source.partition(":")
        dialog.setTextValue(f"{base}-copy:{tag or 'latest'}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda text: self._tasks.spawn(self.copy(source, text)))
        dialog.finished.connect(self._on_copy_dialog_finished)
        self._copy_dialog = dialog
        dialog.open()

    def _on_copy_dialog_finished(self, _result: int) -> None:
        self._copy_dialog = None
