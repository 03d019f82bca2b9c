"""The llama.cpp pane: servers connected by address, one server of our own, and router models.

Top left, the servers ModelDesk knows (added by URL, or started here) with their model, context
size and busy slots. Top right, the models of the chosen router-mode server with Load / Unload /
Switch. Bottom left, the form that starts a llama-server on a GGUF file (or a router over a
folder); bottom right, that server's log and, when it stopped by itself, a notice with Restart.

The pane runs at most one server of its own; starting another stops the first. Every slot is a
one-line wrapper around an async method that tests await directly.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFontDatabase, QHideEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import BadRequest, DomainError
from desktop_app.domain.llamacpp import (
    DEFAULT_CTX,
    ManagedServerSpec,
    ManagedState,
    ManagedStatus,
    RouterModelStatus,
    ServerInfo,
)
from desktop_app.services.llamacpp import LlamaCppService, ManagedServer, normalise_url
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.llamacpp.models import (
    ERROR_COLOUR,
    RouterModelsModel,
    ServerRow,
    ServersModel,
    ServerSource,
    host_port,
)

SERVERS_EMPTY = ("No llama.cpp servers yet. Type the address of a running llama-server above and "
                 "press Connect, or start one on a GGUF file.")
ROUTER_EMPTY = ("No router yet: start one over a folder of GGUF files, or connect to a llama-server "
                "started with --models-dir; its models can then be loaded and unloaded here.")
NO_GGUF_HINT = "No GGUF files found yet: choose one with Browse…"
LOG_PLACEHOLDER = "Start a server to see its log here."
URL_PLACEHOLDER = "http://127.0.0.1:8080"
EXTRA_ARGS_PLACEHOLDER = "e.g. --no-jinja --chat-template gemma"
ROUTER_BUTTON_TIP = ("Run llama-server in router mode over a folder of GGUF files, with the settings of "
                     "the form below")
REFRESH_INTERVAL_MS = 5000
ROUTER_POLL_S = 0.25
LOG_BLOCKS = 2000

_CRASH_STYLE = (
    "QFrame#crashNotice { background: #fdecea; border: 1px solid #e6a19a; border-radius: 4px; }"
    " QFrame#crashNotice QLabel { color: #5f1d16; }"
)


def _say(exc: DomainError) -> str:
    return f"{exc.message} {exc.action}".strip()


class _EmptyState(QFrame):
    """A sentence and the button for the next step, on the same framed panel as the list it stands for."""

    def __init__(self, text: str, button: QPushButton, *, object_name: str) -> None:
        super().__init__(objectName=object_name, frameShape=QFrame.Shape.StyledPanel, autoFillBackground=True,
                         backgroundRole=QPalette.ColorRole.Base)
        self.label = QLabel(text, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter,
                            foregroundRole=QPalette.ColorRole.PlaceholderText)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.button = button
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addStretch(1)
        layout.addWidget(self.label)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)


def _table(object_name: str) -> QTableView:
    view = QTableView(objectName=object_name)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    view.verticalHeader().hide()
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setHighlightSections(False)
    return view


def _status_label(object_name: str) -> QLabel:
    label = QLabel(objectName=object_name, wordWrap=True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


class LlamaCppPane(QWidget):
    server_state_changed = Signal(str)  # the pane's own server: ManagedStatus value
    router_models_changed = Signal()
    use_in_chat_requested = Signal(str)  # a server's URL: add it as a chat account
    binary_setting_changed = Signal(str)  # the llama-server path typed or chosen here, to be saved

    def __init__(
        self, *, llamacpp: LlamaCppService, gguf_files: Callable[[], Sequence[Path]] = lambda: (),
        binary_setting: str = "", child_env: Mapping[str, str] | None = None, parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._llamacpp = llamacpp
        self._gguf_files = gguf_files
        self._child_env = dict(child_env or {})  # extra environment for servers started here (tests)
        self._tasks = TaskOwner("LlamaCppPane")
        self._managed: ManagedServer | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._last_status = ""
        self._router_url = ""
        self._refreshing: asyncio.Task[Any] | None = None
        self._dialog: QFileDialog | None = None
        self.servers_model = ServersModel(self)
        self.router_model = RouterModelsModel(self)
        self._build(binary_setting)
        self._connect()
        self.reload_gguf_files()
        self._refresh_timer = QTimer(self, interval=REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self._on_refresh_timer)
        self._update_servers_state()
        self._set_router("")
        self._update_managed_buttons()

    # --- construction --------------------------------------------------------------------------

    def _build(self, binary_setting: str) -> None:
        # Servers, top left.
        self.url_edit = QLineEdit(objectName="serverUrl", placeholderText=URL_PLACEHOLDER, clearButtonEnabled=True)
        self.url_edit.setAccessibleName("Server address")
        self.connect_button = QPushButton("Connect", objectName="connectServer",
                                          toolTip="Add the llama-server at this address to the list")
        self.refresh_button = QPushButton("Refresh", objectName="refreshServers",
                                          toolTip="Ask every server in the list how it is doing")
        self.remove_button = QPushButton("Remove", objectName="removeServer", enabled=False,
                                         toolTip="Take the selected server off the list (it keeps running)")
        connect_row = QHBoxLayout()
        connect_row.addWidget(self.url_edit, 1)
        connect_row.addWidget(self.connect_button)
        connect_row.addWidget(self.refresh_button)
        connect_row.addWidget(self.remove_button)
        self.use_in_chat_button = QPushButton("Use in chat", objectName="useInChat", enabled=False,
                                              toolTip="Add the selected server as an account for the chat")
        self.use_in_chat_button.clicked.connect(self._on_use_in_chat_clicked)
        connect_row.addWidget(self.use_in_chat_button)
        self.servers_view = _table("serverList")
        self.servers_view.setModel(self.servers_model)
        # Addresses, sizes and slots as wide as they need; the model name takes the rest, and a long
        # status (an error sentence) is cut, with the whole of it in the tooltip.
        header = self.servers_view.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ServersModel.MODEL, QHeaderView.ResizeMode.Stretch)
        header.setMaximumSectionSize(self.fontMetrics().averageCharWidth() * 36)
        self.start_here_button = QPushButton("Start a server", objectName="startHere",
                                             toolTip="Go to the form that starts llama-server on a GGUF file")
        self.servers_empty = _EmptyState(SERVERS_EMPTY, self.start_here_button, object_name="serversEmpty")
        self._servers_stack = QStackedWidget()
        self._servers_stack.addWidget(self.servers_view)
        self._servers_stack.addWidget(self.servers_empty)
        self.servers_status = _status_label("serversStatus")
        servers_box = QGroupBox("Servers", objectName="serversBox")
        servers_layout = QVBoxLayout(servers_box)
        servers_layout.addLayout(connect_row)
        servers_layout.addWidget(self._servers_stack, 1)
        servers_layout.addWidget(self.servers_status)

        # Router models, top right.
        self.router_title = QLabel(objectName="routerTitle", wordWrap=True)
        self.router_title.setTextFormat(Qt.TextFormat.PlainText)
        self.router_view = _table("routerModels")
        self.router_view.setModel(self.router_model)
        router_header = self.router_view.horizontalHeader()
        router_header.setStretchLastSection(False)
        router_header.setSectionResizeMode(RouterModelsModel.MODEL, QHeaderView.ResizeMode.Stretch)
        router_header.setSectionResizeMode(RouterModelsModel.STATUS, QHeaderView.ResizeMode.ResizeToContents)
        self.load_button = QPushButton("Load", objectName="loadModel", enabled=False,
                                       toolTip="Load the selected model next to those already loaded")
        self.unload_button = QPushButton("Unload", objectName="unloadModel", enabled=False,
                                         toolTip="Unload the selected model and free its memory")
        self.switch_button = QPushButton("Switch to", objectName="switchModel", enabled=False,
                                         toolTip="Unload every other model, then load the selected one")
        self.start_router_button = QPushButton("Start router over folder…", objectName="startRouter",
                                               toolTip=ROUTER_BUTTON_TIP)
        self._router_buttons = QWidget(objectName="routerButtons")
        router_buttons = QHBoxLayout(self._router_buttons)
        router_buttons.setContentsMargins(0, 0, 0, 0)
        router_buttons.addWidget(self.load_button)
        router_buttons.addWidget(self.unload_button)
        router_buttons.addWidget(self.switch_button)
        router_buttons.addStretch(1)
        router_buttons.addWidget(self.start_router_button)
        self.router_empty_button = QPushButton("Start router over folder…", objectName="startRouterEmpty")
        self.router_empty = _EmptyState(ROUTER_EMPTY, self.router_empty_button, object_name="routerEmpty")
        self._router_stack = QStackedWidget()
        self._router_stack.addWidget(self.router_view)
        self._router_stack.addWidget(self.router_empty)
        self.router_status = _status_label("routerStatus")
        router_box = QGroupBox("Router models", objectName="routerBox")
        router_layout = QVBoxLayout(router_box)
        router_layout.addWidget(self.router_title)
        router_layout.addWidget(self._router_stack, 1)
        router_layout.addWidget(self._router_buttons)
        router_layout.addWidget(self.router_status)

        # Start a server, bottom left.
        self.binary_edit = QLineEdit(binary_setting, objectName="binaryPath", clearButtonEnabled=True,
                                     placeholderText="llama-server on PATH")
        self.binary_edit.setAccessibleName("llama-server executable")
        self.binary_browse = QPushButton("Browse…", objectName="browseBinary",
                                         toolTip="Choose the llama-server executable")
        self.model_combo = QComboBox(objectName="ggufFile", accessibleName="GGUF file")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_browse = QPushButton("Browse…", objectName="browseModel", toolTip="Choose a GGUF file")
        self.model_hint = QLabel(NO_GGUF_HINT, objectName="noGgufHint", wordWrap=True,
                                 foregroundRole=QPalette.ColorRole.PlaceholderText)
        self.ctx_spin = self._spin("contextSize", 0, 1 << 20, DEFAULT_CTX, "From the model", step=1024,
                                   tip="Tokens of context per server (-c); 0 uses the model's own length")
        self.threads_spin = self._spin("threads", 0, 512, 0, "Auto", tip="CPU threads (-t)")
        self.gpu_spin = self._spin("gpuLayers", -1, 999, -1, "Auto",
                                   tip="Layers to put on the GPU (-ngl); 0 keeps everything on the CPU")
        self.port_spin = self._spin("port", 0, 65535, 0, "Auto (a free port)", tip="Port to listen on, on 127.0.0.1")
        self.port_spin.setGroupSeparatorShown(False)
        self.extra_args_edit = QLineEdit(objectName="extraArgs", placeholderText=EXTRA_ARGS_PLACEHOLDER,
                                         clearButtonEnabled=True,
                                         toolTip="More llama-server arguments, as on a command line")
        self.start_button = QPushButton("Start", objectName="startServer", default=True,
                                        toolTip="Start llama-server on the chosen GGUF file")
        self.stop_button = QPushButton("Stop", objectName="stopServer", enabled=False,
                                       toolTip="Stop the server started here")
        self.start_status = _status_label("startStatus")

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
        start_box = QGroupBox("Start a server", objectName="startBox")
        start_layout = QVBoxLayout(start_box)
        start_layout.addLayout(form)
        start_layout.addLayout(buttons)
        start_layout.addWidget(self.start_status)
        start_layout.addStretch(1)

        # Its log, bottom right.
        self.crash_label = QLabel(objectName="crashMessage", wordWrap=True)
        self.crash_label.setTextFormat(Qt.TextFormat.PlainText)
        self.restart_button = QPushButton("Restart", objectName="restartServer",
                                          toolTip="Start the server again with the same settings")
        self.crash_notice = QFrame(objectName="crashNotice", styleSheet=_CRASH_STYLE)
        crash_layout = QHBoxLayout(self.crash_notice)
        crash_layout.setContentsMargins(10, 6, 6, 6)
        crash_layout.addWidget(self.crash_label, 1)
        crash_layout.addWidget(self.restart_button)
        self.crash_notice.hide()
        self.log_title = QLabel("No server started here", objectName="logTitle")
        self.log_title.setTextFormat(Qt.TextFormat.PlainText)
        self.log_view = QPlainTextEdit(objectName="serverLog", readOnly=True, placeholderText=LOG_PLACEHOLDER)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_view.setMaximumBlockCount(LOG_BLOCKS)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        log_box = QGroupBox("Server log", objectName="logBox")
        log_layout = QVBoxLayout(log_box)
        log_layout.addWidget(self.log_title)
        log_layout.addWidget(self.crash_notice)
        log_layout.addWidget(self.log_view, 1)

        top = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        top.addWidget(servers_box)
        top.addWidget(router_box)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        bottom = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        bottom.addWidget(start_box)
        bottom.addWidget(log_box)
        bottom.setStretchFactor(0, 2)
        bottom.setStretchFactor(1, 3)
        rows = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        rows.addWidget(top)
        rows.addWidget(bottom)
        rows.setStretchFactor(0, 1)
        rows.setStretchFactor(1, 1)
        # Fixed proportions (scaled to the pane), so the columns do not jump when a router appears.
        top.setSizes([3000, 2000])
        bottom.setSizes([2000, 3000])
        rows.setSizes([1000, 1000])
        layout = QVBoxLayout(self)
        layout.addWidget(rows)

    def _spin(self, name: str, low: int, high: int, value: int, special: str, *, tip: str,
              step: int = 1) -> QSpinBox:
        spin = QSpinBox(objectName=name, minimum=low, maximum=high, value=value, singleStep=step, toolTip=tip)
        spin.setSpecialValueText(special)
        spin.setGroupSeparatorShown(True)
        spin.setStepType(QAbstractSpinBox.StepType.DefaultStepType)
        return spin

    def _connect(self) -> None:
        self.connect_button.clicked.connect(self._on_connect_clicked)
        self.url_edit.returnPressed.connect(self._on_connect_clicked)
        self.refresh_button.clicked.connect(self._on_refresh_clicked)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.start_here_button.clicked.connect(self._on_start_here_clicked)
        self.servers_view.selectionModel().selectionChanged.connect(self._on_servers_selection_changed)
        self.servers_model.rowsInserted.connect(self._on_servers_rows_changed)
        self.servers_model.rowsRemoved.connect(self._on_servers_rows_changed)
        self.router_view.selectionModel().selectionChanged.connect(self._on_router_selection_changed)
        self.router_model.dataChanged.connect(self._on_router_models_changed)
        self.router_model.modelReset.connect(self._on_router_models_changed)
        self.load_button.clicked.connect(self._on_load_clicked)
        self.unload_button.clicked.connect(self._on_unload_clicked)
        self.switch_button.clicked.connect(self._on_switch_clicked)
        self.start_router_button.clicked.connect(self._on_start_router_clicked)
        self.router_empty_button.clicked.connect(self._on_start_router_clicked)
        self.binary_browse.clicked.connect(self._on_binary_browse_clicked)
        self.binary_edit.editingFinished.connect(self._on_binary_edited)
        self.model_browse.clicked.connect(self._on_model_browse_clicked)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.restart_button.clicked.connect(self._on_restart_clicked)

    # --- slots: one line each, the work is in the async methods below ---------------------------

    def _on_connect_clicked(self) -> None:
        self._tasks.spawn(self.connect(self.url_edit.text()))

    def _on_refresh_clicked(self) -> None:
        self._tasks.spawn(self.refresh())

    def _on_refresh_timer(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = self._tasks.spawn(self.refresh())

    def _on_remove_clicked(self) -> None:
        self.forget(self.selected_server_url())

    def _on_start_here_clicked(self) -> None:
        (self.model_combo if self.model_combo.count() else self.model_browse).setFocus()

    def _on_servers_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._follow_selected_server()

    def _on_servers_rows_changed(self, *_args: object) -> None:
        self._update_servers_state()

    def _on_router_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_router_buttons()

    def _on_router_models_changed(self, *_args: object) -> None:
        self._update_router_buttons()

    def _on_load_clicked(self) -> None:
        self._tasks.spawn(self.router_load(self.selected_router_model()))

    def _on_unload_clicked(self) -> None:
        self._tasks.spawn(self.router_unload(self.selected_router_model()))

    def _on_switch_clicked(self) -> None:
        self._tasks.spawn(self.router_switch(self.selected_router_model()))

    def _on_start_clicked(self) -> None:
        self._start_from_form(None)

    def _on_stop_clicked(self) -> None:
        self._tasks.spawn(self.stop_managed())

    def _on_restart_clicked(self) -> None:
        self._tasks.spawn(self.restart_managed())

    def _on_binary_edited(self) -> None:
        self.binary_setting_changed.emit(self.binary_edit.text().strip())

    def _on_model_file_selected(self, path: str) -> None:
        self.choose_model_file(Path(path))

    def _on_binary_file_selected(self, path: str) -> None:
        self.binary_edit.setText(path)
        self._on_binary_edited()

    def _on_router_folder_selected(self, path: str) -> None:
        self._start_from_form(Path(path))

    def _on_managed_state(self, state: ManagedState) -> None:
        if shiboken6.isValid(self):
            self._show_managed_state(state)

    def _on_managed_log(self, line: str) -> None:
        if shiboken6.isValid(self):
            self.log_view.appendPlainText(line)

    # --- public: what tests and the app use ------------------------------------------------------

    @property
    def managed(self) -> ManagedServer | None:
        """The server this pane started (running, stopped or crashed), if any."""
        return self._managed

    @property
    def router_url(self) -> str:
        """The router whose models the router list shows ("" when none)."""
        return self._router_url

    @property
    def file_dialog(self) -> QFileDialog | None:
        """The open Browse / folder dialog, if any."""
        return self._dialog

    @property
    def showing_servers_empty_state(self) -> bool:
        return self._servers_stack.currentWidget() is self.servers_empty

    @property
    def showing_router_empty_state(self) -> bool:
        return self._router_stack.currentWidget() is self.router_empty

    def selected_server_url(self) -> str:
        rows = self.servers_view.selectionModel().selectedRows()
        row = self.servers_model.row_at(rows[0].row()) if rows else None
        return row.url if row is not None else ""

    def selected_router_model(self) -> str:
        rows = self.router_view.selectionModel().selectedRows()
        model = self.router_model.model_at(rows[0].row()) if rows else None
        return model.id if model is not None else ""

    def select_router_model(self, model_id: str) -> None:
        row = self.router_model.row_of(model_id)
        if row >= 0:
            self.router_view.selectRow(row)

    def reload_gguf_files(self) -> None:
        """Fill the GGUF combo from `gguf_files()` (cheap: the app scans elsewhere); keeps the choice."""
        current = self.model_combo.currentData()
        paths = [Path(p) for p in self._gguf_files()]
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

    def spec_from_form(self, models_dir: Path | None = None) -> ManagedServerSpec:
        """The form as a spec: on the chosen GGUF file, or a router over `models_dir`."""
        model = self.model_combo.currentData()
        if models_dir is None and not model:
            raise BadRequest("Pick a GGUF file first: choose one from the list or with Browse….")
        try:
            extra = tuple(shlex.split(self.extra_args_edit.text()))
        except ValueError as exc:
            raise BadRequest(f"The extra arguments could not be read ({exc}).",
                             "Check the quotes in them.") from exc
        return ManagedServerSpec(
            model=None if models_dir is not None else Path(model), models_dir=models_dir,
            binary=self.binary_edit.text().strip(), ctx=self.ctx_spin.value(),
            threads=self.threads_spin.value() or None,
            gpu_layers=None if self.gpu_spin.value() < 0 else self.gpu_spin.value(),
            port=self.port_spin.value(), extra_args=extra, env=self._child_env,
        )

    def forget(self, url: str) -> None:
        """Take a connected server off the list (a server started here goes with Stop)."""
        index = self.servers_model.row_of(url)
        row = self.servers_model.row_at(index)
        if row is None or row.source is not ServerSource.CONNECTED:
            return
        self.servers_model.remove(url)
        if url == self._router_url:
            self._set_router(self._another_router(url))

    async def connect(self, url: str) -> ServerInfo | None:
        """Add the llama-server at `url` to the list and show what it serves; None if unreachable."""
        if not url.strip():
            self._say(self.servers_status, "Type the address of a llama-server first, e.g. "
                                           f"{URL_PLACEHOLDER}.", ERROR_COLOUR)
            return None
        url = normalise_url(url)
        self._say(self.servers_status, f"Connecting to {host_port(url)}…", None)
        try:
            info = await self._llamacpp.inspect(url)
        except DomainError as exc:
            if shiboken6.isValid(self):
                self._say(self.servers_status, _say(exc), ERROR_COLOUR)
            return None
        if not shiboken6.isValid(self):
            return info
        self._say(self.servers_status, "", None)
        existing = self.servers_model.row_at(self.servers_model.row_of(url))
        source = existing.source if existing is not None else ServerSource.CONNECTED
        managed = existing.managed if existing is not None else None
        title = existing.title if existing is not None else ""
        row = self.servers_model.upsert(ServerRow(url, source, info=info, managed=managed, title=title))
        self.servers_view.selectRow(row)
        if info.router_mode:
            self._set_router(url)
            await self.refresh_router()
        return info

    async def refresh(self) -> None:
        """Ask every listed server how it is doing, then the router for its models."""
        rows = [row for row in self.servers_model.rows() if row.managed is None or row.managed.alive]
        await asyncio.gather(*(self._refresh_row(row.url) for row in rows))
        if self._router_url and shiboken6.isValid(self):
            await self.refresh_router()

    async def refresh_router(self) -> None:
        url = self._router_url
        if not url:
            return
        try:
            models = await self._llamacpp.router_models(url)
        except DomainError as exc:
            if shiboken6.isValid(self) and url == self._router_url:
                self._say(self.router_status, _say(exc), ERROR_COLOUR)
            return
        if not shiboken6.isValid(self) or url != self._router_url:
            return
        self.router_model.set_models(models)
        self.router_models_changed.emit()

    async def router_load(self, model: str) -> bool:
        """Load `model` on the router; True once it is loaded."""
        return await self._router_op(model, "Loading", self._load_and_wait)

    async def router_unload(self, model: str) -> bool:
        """Unload `model` from the router; True once it is unloaded."""
        return await self._router_op(model, "Unloading", self._unload_and_wait)

    async def router_switch(self, model: str) -> bool:
        """Unload every other model and load `model`; True once that is done."""
        return await self._router_op(model, "Switching to", self._llamacpp.switch)

    async def start_managed(self, spec: ManagedServerSpec) -> ManagedState | None:
        """Start a llama-server of our own (stopping the previous one); its state, None if it failed."""
        if self._managed is not None:
            await self.stop_managed()
        managed = self._llamacpp.managed(spec, binary_setting=self.binary_edit.text().strip())
        self._attach(managed)
        self.log_view.clear()
        self.log_title.setText(f"{'Router over' if spec.router else 'Serving'} {spec.title}")
        self._say(self.start_status, "", None)
        try:
            state = await managed.start()
        except DomainError as exc:
            if shiboken6.isValid(self):
                self._say(self.start_status, _say(exc), ERROR_COLOUR)
                if managed.state.status is not ManagedStatus.CRASHED and managed.url:
                    self.servers_model.remove(managed.url)
                self._update_managed_buttons()
            return None
        if not shiboken6.isValid(self):
            return state
        await self._refresh_row(managed.url)
        if spec.router:
            self._set_router(managed.url)
            await self.refresh_router()
        return state

    async def stop_managed(self) -> None:
        """Stop the server started here (only that process) and take it off the list."""
        managed = self._managed
        if managed is None:
            return
        await managed.stop()
        if not shiboken6.isValid(self):
            return
        self.servers_model.remove(managed.url)
        if self._router_url == managed.url:
            self._set_router(self._another_router(managed.url))
        self.crash_notice.hide()
        self._update_managed_buttons()

    async def restart_managed(self) -> ManagedState | None:
        """Start the server started here again (after a crash, or to apply nothing new)."""
        managed = self._managed
        if managed is None:
            return None
        self._say(self.start_status, "", None)
        self.log_view.appendPlainText("")
        try:
            state = await managed.restart()
        except DomainError as exc:
            if shiboken6.isValid(self):
                self._say(self.start_status, _say(exc), ERROR_COLOUR)
            return None
        if shiboken6.isValid(self):
            await self._refresh_row(managed.url)
            if managed.spec.router:
                self._set_router(managed.url)
                await self.refresh_router()
        return state

    async def switch_managed_model(self, path: Path) -> ManagedState | None:
        """Serve another GGUF file on the server started here: a restart with that file."""
        managed = self._managed
        if managed is None:
            return None
        self.choose_model_file(Path(path))
        self.log_view.appendPlainText("")
        try:
            state = await managed.switch_model(Path(path))
        except DomainError as exc:
            if shiboken6.isValid(self):
                self._say(self.start_status, _say(exc), ERROR_COLOUR)
            return None
        if shiboken6.isValid(self):
            self.log_title.setText(f"Serving {managed.spec.title}")
            await self._refresh_row(managed.url)
        return state

    async def aclose(self) -> None:
        """Close dialogs, cancel what runs, and stop the server started here."""
        self._refresh_timer.stop()
        if self._dialog is not None:
            self._dialog.reject()
        await self._tasks.aclose()
        managed = self._managed
        if managed is not None:
            await managed.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # --- Qt overrides --------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._refresh_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self._refresh_timer.stop()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._refresh_timer.stop()
        self._tasks.cancel_all()
        super().closeEvent(event)

    # --- the server started here -----------------------------------------------------------------

    def _start_from_form(self, models_dir: Path | None) -> None:
        try:
            spec = self.spec_from_form(models_dir)
        except DomainError as exc:
            self._say(self.start_status, _say(exc), ERROR_COLOUR)
            return
        self._tasks.spawn(self.start_managed(spec))

    def _attach(self, managed: ManagedServer) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._managed = managed
        self._last_status = ""
        self._unsubscribe = [managed.add_state_listener(self._on_managed_state),
                             managed.add_log_listener(self._on_managed_log)]

    def _show_managed_state(self, state: ManagedState) -> None:
        managed = self._managed
        if managed is None:
            return
        if state.url and state.status is not ManagedStatus.STOPPED:
            existing = self.servers_model.row_at(self.servers_model.row_of(state.url))
            info = existing.info if existing is not None and state.status is ManagedStatus.RUNNING else None
            self.servers_model.upsert(ServerRow(state.url, ServerSource.MANAGED, info=info, managed=state,
                                                title=managed.spec.title))
        crashed = state.status is ManagedStatus.CRASHED
        if crashed:
            self.crash_label.setText(f"{state.message} Its last lines are in the log below.")
            if self._router_url == state.url:
                self.router_model.set_models([])
                self.router_models_changed.emit()
        self.crash_notice.setVisible(crashed)
        self._update_managed_buttons()
        if state.status.value != self._last_status:
            self._last_status = state.status.value
            self.server_state_changed.emit(state.status.value)

    def _update_managed_buttons(self) -> None:
        state = self._managed.state if self._managed is not None else ManagedState()
        self.start_button.setEnabled(not state.alive)
        for button in (self.start_router_button, self.router_empty_button):
            button.setEnabled(not state.alive)
            button.setToolTip("Stop the server started here first: the pane runs one at a time." if state.alive
                              else ROUTER_BUTTON_TIP)
        self.stop_button.setEnabled(state.alive)
        self.restart_button.setEnabled(state.status is ManagedStatus.CRASHED)

    # --- the server list -------------------------------------------------------------------------

    async def _refresh_row(self, url: str) -> None:
        try:
            info: ServerInfo | None = await self._llamacpp.inspect(url)
            error = ""
        except DomainError as exc:
            info, error = None, exc.message
        if not shiboken6.isValid(self):
            return
        existing = self.servers_model.row_at(self.servers_model.row_of(url))
        if existing is None:
            return  # removed meanwhile
        if existing.managed is not None and self._managed is not None and self._managed.url == url:
            managed: ManagedState | None = self._managed.state
            if not managed.alive:
                return  # it stopped while we asked; its state row says so
        else:
            managed = existing.managed
        self.servers_model.upsert(ServerRow(url, existing.source, info=info, error=error, managed=managed,
                                            title=existing.title))

    def _update_servers_state(self) -> None:
        empty = self.servers_model.rowCount() == 0
        self._servers_stack.setCurrentWidget(self.servers_empty if empty else self.servers_view)
        self.remove_button.setEnabled(self._selected_row_source() is ServerSource.CONNECTED)
        self.use_in_chat_button.setEnabled(self.selected_server_url() is not None)

    def _on_use_in_chat_clicked(self) -> None:
        url = self.selected_server_url()
        if url:
            self.use_in_chat_requested.emit(url)

    def _selected_row_source(self) -> ServerSource | None:
        url = self.selected_server_url()
        row = self.servers_model.row_at(self.servers_model.row_of(url)) if url else None
        return row.source if row is not None else None

    def _follow_selected_server(self) -> None:
        self._update_servers_state()
        url = self.selected_server_url()
        row = self.servers_model.row_at(self.servers_model.row_of(url)) if url else None
        if row is not None and row.router_mode and url != self._router_url:
            self._set_router(url)
            self._tasks.spawn(self.refresh_router())

    def _another_router(self, except_url: str) -> str:
        for row in self.servers_model.rows():
            if row.router_mode and row.url != except_url:
                return row.url
        return ""

    # --- router ----------------------------------------------------------------------------------

    def _set_router(self, url: str) -> None:
        if url != self._router_url:
            self.router_model.set_models([])
            self._say(self.router_status, "", None)
        self._router_url = url
        self.router_title.setText(f"Models of the router at {host_port(url)}" if url else "")
        self.router_title.setVisible(bool(url))
        self._router_stack.setCurrentWidget(self.router_view if url else self.router_empty)
        self._router_buttons.setVisible(bool(url))  # the empty state has its own button for the next step
        self._update_router_buttons()

    def _update_router_buttons(self) -> None:
        selected = self.router_model.model_at(self.router_model.row_of(self.selected_router_model()))
        active_others = any(m.active for m in self.router_model.models() if selected is None or m.id != selected.id)
        self.load_button.setEnabled(selected is not None and selected.status is RouterModelStatus.UNLOADED)
        self.unload_button.setEnabled(selected is not None and selected.active)
        self.switch_button.setEnabled(selected is not None and (
            selected.status is not RouterModelStatus.LOADED or active_others))

    async def _load_and_wait(self, url: str, model: str) -> None:
        await self._llamacpp.load(url, model)
        await self._llamacpp.wait_model(url, model, RouterModelStatus.LOADED)

    async def _unload_and_wait(self, url: str, model: str) -> None:
        await self._llamacpp.unload(url, model)
        await self._llamacpp.wait_model(url, model, RouterModelStatus.UNLOADED)

    async def _router_op(self, model: str, verb: str,
                         operation: Callable[[str, str], Coroutine[Any, Any, Any]]) -> bool:
        url = self._router_url
        if not url or not model:
            return False
        self._say(self.router_status, f"{verb} {model}…", None)
        work = asyncio.ensure_future(operation(url, model))
        try:
            # The list follows the router while it works (loading… loaded).
            while not work.done():
                await asyncio.wait({work}, timeout=ROUTER_POLL_S)
                await self.refresh_router()
            work.result()
        except DomainError as exc:
            if shiboken6.isValid(self):
                self._say(self.router_status, _say(exc), ERROR_COLOUR)
            return False
        finally:
            if not work.done():  # cancelled: the router finishes on its own; we stop waiting
                work.cancel()
        if shiboken6.isValid(self):
            self._say(self.router_status, "", None)
            await self.refresh_router()
            await self._refresh_row(url)
        return True

    # --- file dialogs ------------------------------------------------------------------------------

    def _on_model_browse_clicked(self) -> None:
        current = self.model_combo.currentData()
        self._open_dialog("Choose a GGUF model", str(Path(current).parent) if current else "",
                          "GGUF models (*.gguf);;All files (*)", self._on_model_file_selected,
                          mode=QFileDialog.FileMode.ExistingFile)

    def _on_binary_browse_clicked(self) -> None:
        current = self.binary_edit.text().strip()
        self._open_dialog("Choose the llama-server executable", str(Path(current).parent) if current else "",
                          "", self._on_binary_file_selected, mode=QFileDialog.FileMode.ExistingFile)

    def _on_start_router_clicked(self) -> None:
        self._open_dialog("Choose a folder of GGUF files for the router", "", "", self._on_router_folder_selected,
                          mode=QFileDialog.FileMode.Directory)

    def _open_dialog(self, title: str, directory: str, filters: str, on_selected: Callable[[str], None], *,
                     mode: QFileDialog.FileMode) -> None:
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

    # --- small helpers ------------------------------------------------------------------------------

    def _say(self, label: QLabel, text: str, colour: str | None) -> None:
        label.setText(text)
        label.setStyleSheet(f"color: {colour};" if colour else "")
        label.setVisible(bool(text))
