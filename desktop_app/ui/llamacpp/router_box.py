"""The llama.cpp pane's "Router models" box: the models of one router-mode server, and its buttons.

With a router chosen, the box lists its models (the pane's `RouterModelsModel`) under a title, with
Load / Unload / Switch to enabled for what the selected model allows, and the buttons that start a
router over a folder or over the GGUF library. Without one, an empty state offers those two starts.
The pane picks the router, fills the model, says in `status` what happens and does the work; this
module only builds the box and keeps its buttons in step with the selection.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.llamacpp import RouterModelStatus
from desktop_app.ui.llamacpp.models import RouterModelsModel, host_port
from desktop_app.ui.llamacpp.widgets import EmptyState, status_label, table

ROUTER_EMPTY = (
    "No router yet: start one over a folder of GGUF files or over every model of the GGUF "
    "library, or connect to a llama-server started with --models-dir; its models can then be "
    "loaded and unloaded here."
)
LIBRARY_ROUTER_TIP = (
    "Run llama-server in router mode over every model of the GGUF files pane, with the settings of the form below"
)
ROUTER_BUTTON_TIP = "Run llama-server in router mode over a folder of GGUF files, with the settings of the form below"
ONE_AT_A_TIME_TIP = "Stop the server started here first: the pane runs one at a time."


class RouterBox(QGroupBox):
    """The router's models and buttons, or the empty state; the library buttons only with `library`."""

    def __init__(self, *, model: RouterModelsModel, library: bool, parent: QWidget | None = None) -> None:
        super().__init__("Router models", parent, objectName="routerBox")
        self._model = model
        self.title = QLabel(objectName="routerTitle", wordWrap=True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.view = table("routerModels")
        self.view.setModel(model)
        header = self.view.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(RouterModelsModel.MODEL, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(RouterModelsModel.STATUS, QHeaderView.ResizeMode.ResizeToContents)
        self.load_button = QPushButton(
            "Load",
            objectName="loadModel",
            enabled=False,
            toolTip="Load the selected model next to those already loaded",
        )
        self.unload_button = QPushButton(
            "Unload", objectName="unloadModel", enabled=False, toolTip="Unload the selected model and free its memory"
        )
        self.switch_button = QPushButton(
            "Switch to",
            objectName="switchModel",
            enabled=False,
            toolTip="Unload every other model, then load the selected one",
        )
        self.start_router_button = QPushButton(
            "Router over folder…", objectName="startRouter", toolTip=ROUTER_BUTTON_TIP
        )
        self._buttons = QWidget(objectName="routerButtons")
        buttons = QHBoxLayout(self._buttons)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.unload_button)
        buttons.addWidget(self.switch_button)
        buttons.addStretch(1)
        buttons.addWidget(self.start_router_button)
        self.start_library_router_button = QPushButton(
            "Router over library", objectName="startLibraryRouter", toolTip=LIBRARY_ROUTER_TIP
        )
        buttons.addWidget(self.start_library_router_button)
        self.empty_button = QPushButton("Start router over folder…", objectName="startRouterEmpty")
        self.library_empty_button = QPushButton(
            "Start router over the library", objectName="startLibraryRouterEmpty", toolTip=LIBRARY_ROUTER_TIP
        )
        self.empty = EmptyState(
            ROUTER_EMPTY, self.empty_button, object_name="routerEmpty", more=(self.library_empty_button,)
        )
        # Only once they have parents: a parentless widget made visible would be a window of its own.
        for button in (self.start_library_router_button, self.library_empty_button):
            button.setVisible(library)
        self._stack = QStackedWidget()
        self._stack.addWidget(self.view)
        self._stack.addWidget(self.empty)
        self.status = status_label("routerStatus")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self._stack, 1)
        layout.addWidget(self._buttons)
        layout.addWidget(self.status)
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        model.dataChanged.connect(self._on_models_changed)
        model.modelReset.connect(self._on_models_changed)

    @property
    def showing_empty_state(self) -> bool:
        return self._stack.currentWidget() is self.empty

    def show_router(self, url: str) -> None:
        """Title the list with the router at `url`, or show the empty state when `url` is ""."""
        self.title.setText(f"Models of the router at {host_port(url)}" if url else "")
        self.title.setVisible(bool(url))
        self._stack.setCurrentWidget(self.view if url else self.empty)
        self._buttons.setVisible(bool(url))  # the empty state has its own button for the next step
        self.update_buttons()

    def allow_start(self, allowed: bool) -> None:
        """Enable the start-router buttons; the pane disallows them while its own server is alive."""
        for button, tip in (
            (self.start_router_button, ROUTER_BUTTON_TIP),
            (self.empty_button, ROUTER_BUTTON_TIP),
            (self.start_library_router_button, LIBRARY_ROUTER_TIP),
            (self.library_empty_button, LIBRARY_ROUTER_TIP),
        ):
            button.setEnabled(allowed)
            button.setToolTip(tip if allowed else ONE_AT_A_TIME_TIP)

    def selected_model(self) -> str:
        rows = self.view.selectionModel().selectedRows()
        model = self._model.model_at(rows[0].row()) if rows else None
        return model.id if model is not None else ""

    def select_model(self, model_id: str) -> None:
        row = self._model.row_of(model_id)
        if row >= 0:
            self.view.selectRow(row)

    def update_buttons(self) -> None:
        selected = self._model.model_at(self._model.row_of(self.selected_model()))
        active_others = any(m.active for m in self._model.models() if selected is None or m.id != selected.id)
        self.load_button.setEnabled(selected is not None and selected.status is RouterModelStatus.UNLOADED)
        self.unload_button.setEnabled(selected is not None and selected.active)
        self.switch_button.setEnabled(
            selected is not None and (selected.status is not RouterModelStatus.LOADED or active_others)
        )

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.update_buttons()

    def _on_models_changed(self, *_args: object) -> None:
        self.update_buttons()
