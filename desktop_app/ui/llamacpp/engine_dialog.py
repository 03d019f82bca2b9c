"""Settings > Local engine…: the llama.cpp pane's "Local engine" box in a window of its own.

The same `EngineBox` (the llama-server in use, Install llama.cpp…, updates), so the engine can
be installed or updated without opening the llama.cpp pane. Not modal: an install goes on while
the user works, and closing the window does not stop it (the installer owns the download).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QVBoxLayout, QWidget

from desktop_app.services.local.llamacpp_install import EngineInstaller
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.llamacpp.engine_box import EngineBox


class LocalEngineDialog(QDialog):
    def __init__(
        self,
        *,
        engines: EngineInstaller,
        binary_setting: Callable[[], str] = lambda: "",
        parent: QWidget | None = None,
        **box_options: Any,  # EngineBox's platform / path / builder, for tests
    ) -> None:
        super().__init__(parent, objectName="localEngineDialog")
        self.setWindowTitle("Local engine")
        self._tasks = TaskOwner("LocalEngineDialog")
        self.box = EngineBox(engines=engines, binary_setting=binary_setting, parent=self, **box_options)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.box, 1)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._tasks.spawn(self.box.refresh())  # the configured path may have changed meanwhile

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await self.box.aclose()
