"""The llama.cpp pane: servers connected by address, one server of our own, and router models.

Top left, the servers ModelDesk knows (its llama.cpp accounts, added by URL, or started here) with
their model, context size and busy slots. Top right, the models of the chosen router-mode server
with Load / Unload / Switch. Bottom left, the form that starts a llama-server on a GGUF file (or a
router over a folder); bottom right, that server's log and, when it stopped by itself, a notice
with Restart.

The pane shows at most one server of its own, whose process `ServerHere` owns; starting another
stops the first. With `LocalServers`, every server that answers is an account (its models in the
chat's picker); the pane says what came of it. The work is in async methods that tests await directly; slots start them or ask first. The boxes are `ServersBox`,
`RouterBox`, `StartForm` and `ServerLog` (servers_box.py, router_box.py, start_form.py,
server_log.py), and above the form `EngineBox` (engine_box.py: the llama-server in use, installing it); the pane keeps their widgets as attributes of its own, and does the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QLabel,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import DomainError
from desktop_app.domain.llamacpp import (
    DEFAULT_CTX,
    ManagedServerSpec,
    ManagedState,
    ManagedStatus,
    RouterModelStatus,
    ServerInfo,
    ServerStartFailed,
)
from desktop_app.domain.urls import same_server
from desktop_app.services.local.gguf_links import link_models
from desktop_app.services.local.llamacpp import LlamaCppService, normalise_url
from desktop_app.services.local.llamacpp_install import EngineInstaller
from desktop_app.services.local.llamacpp_managed import ManagedServer
from desktop_app.services.local.servers import InPicker, LocalServers, ServerHere
from desktop_app.ui.common.dialogs import ask_to_confirm
from desktop_app.ui.common.events import ServiceEvent, follow
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.llamacpp.engine_box import EngineBox
from desktop_app.ui.llamacpp.models import (
    RouterModelsModel,
    ServerRow,
    ServersModel,
    ServerSource,
    host_port,
)
from desktop_app.ui.llamacpp.router_box import ROUTER_EMPTY, RouterBox
from desktop_app.ui.llamacpp.server_log import ServerLog
from desktop_app.ui.llamacpp.servers_box import NO_URL, SERVERS_EMPTY, ServersBox
from desktop_app.ui.llamacpp.start_form import NO_GGUF_HINT, StartForm
from desktop_app.ui.theme import set_tone

__all__ = ["NO_GGUF_HINT", "ROUTER_EMPTY", "SERVERS_EMPTY", "LlamaCppPane"]

NO_LIBRARY_MODELS = "The GGUF library has no models yet: add a folder in GGUF files, or start a router over a folder."
REFRESH_INTERVAL_MS = 5000
ROUTER_POLL_S = 0.25


def _say(exc: DomainError) -> str:
    return f"{exc.message} {exc.action}".strip()


class LlamaCppPane(QWidget):
    """Over 30 methods on purpose: each action is a one-line slot over an async method tests await."""

    server_state_changed = Signal(str)  # the pane's own server: ManagedStatus value
    router_models_changed = Signal()
    chat_requested = Signal()  # "Use in chat": the server's models are in the chat's picker
    status_message = Signal(str)  # a sentence for the window's status bar
    server_removed = Signal(str)  # a connected server the user took off the list (after confirming)
    binary_setting_changed = Signal(str)  # the llama-server path typed or chosen here, to be saved

    def __init__(
        self,
        *,
        llamacpp: LlamaCppService,
        here: ServerHere,
        local: LocalServers | None = None,
        gguf_files: Callable[[], Sequence[Path]] = lambda: (),
        binary_setting: str = "",
        child_env: Mapping[str, str] | None = None,
        router_dir: Path | None = None,
        engines: EngineInstaller | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._llamacpp = llamacpp
        self._here = here
        self._local = local
        self._opened = False
        self.start_error: DomainError | None = None  # why the last start here failed
        self._gguf_files = gguf_files
        self._router_dir = router_dir  # where a router over the GGUF library gets its folder of links
        self._child_env = dict(child_env or {})  # extra environment for servers started here (tests)
        self._engines = engines  # installs llama.cpp (the "Local engine" box); None: no box
        self._tasks = TaskOwner("LlamaCppPane")
        self._managed_followed: list[ServiceEvent] = []  # the state and log of the server started here
        self._last_status = ""
        self._router_url = ""
        self._router_gone = False  # the router did not answer the last time it was asked
        self._refreshing: asyncio.Task[Any] | None = None
        self._remove_dialog: QMessageBox | None = None
        self.servers_model = ServersModel(self)
        self.router_model = RouterModelsModel(self)
        self._build(binary_setting)
        self._connect()
        self.reload_gguf_files()
        self._refresh_timer = QTimer(self, interval=REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self._on_refresh_timer)
        self._set_router("")
        self._update_managed_buttons()

    # --- construction --------------------------------------------------------------------------

    def _build(self, binary_setting: str) -> None:
        # Servers top left, router models top right; the start form bottom left, its log bottom right.
        self.servers_box = ServersBox(model=self.servers_model)
        self.router_box = RouterBox(model=self.router_model, library=self._router_dir is not None)
        self.form = StartForm(binary_setting=binary_setting)
        self.server_log = ServerLog()
        self.engine_box: EngineBox | None = None
        start_side: QWidget = self.form
        if self._engines is not None:
            self.engine_box = EngineBox(
                engines=self._engines, binary_setting=lambda: self.form.binary_edit.text().strip()
            )
            start_side = QWidget()
            column = QVBoxLayout(start_side)
            column.setContentsMargins(0, 0, 0, 0)
            column.addWidget(self.engine_box)
            column.addWidget(self.form, 1)

        top = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        top.addWidget(self.servers_box)
        top.addWidget(self.router_box)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        bottom = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        bottom.addWidget(start_side)
        bottom.addWidget(self.server_log)
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

    def _connect(self) -> None:
        self.servers_box.connect_button.clicked.connect(self._on_connect_clicked)
        self.servers_box.url_edit.returnPressed.connect(self._on_connect_clicked)
        self.servers_box.refresh_button.clicked.connect(self._on_refresh_clicked)
        self.servers_box.remove_button.clicked.connect(self._on_remove_clicked)
        self.servers_box.use_in_chat_button.clicked.connect(self._on_use_in_chat_clicked)
        self.servers_box.start_here_button.clicked.connect(self._on_start_here_clicked)
        self.servers_box.view.selectionModel().selectionChanged.connect(self._on_servers_selection_changed)
        self.router_box.load_button.clicked.connect(self._on_load_clicked)
        self.router_box.unload_button.clicked.connect(self._on_unload_clicked)
        self.router_box.switch_button.clicked.connect(self._on_switch_clicked)
        self.router_box.start_router_button.clicked.connect(self._on_start_router_clicked)
        self.router_box.empty_button.clicked.connect(self._on_start_router_clicked)
        self.router_box.start_library_router_button.clicked.connect(self._on_library_router_clicked)
        self.router_box.library_empty_button.clicked.connect(self._on_library_router_clicked)
        self.form.binary_changed.connect(self.binary_setting_changed)
        if self.engine_box is not None:
            self.form.binary_changed.connect(self._on_binary_changed)
        self.form.router_folder_chosen.connect(self._on_router_folder_chosen)
        self.form.start_button.clicked.connect(self._on_start_clicked)
        self.form.stop_button.clicked.connect(self._on_stop_clicked)
        self.server_log.restart_button.clicked.connect(self._on_restart_clicked)

    # --- slots: one line each, the work is in the async methods below ---------------------------

    def _on_connect_clicked(self) -> None:
        self._tasks.spawn(self.connect(self.servers_box.url_edit.text()))

    def _on_binary_changed(self) -> None:
        if self.engine_box is not None:
            self._tasks.spawn(self.engine_box.refresh())

    def _on_refresh_clicked(self) -> None:
        self._tasks.spawn(self.refresh())

    def _on_refresh_timer(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = self._tasks.spawn(self.refresh())

    def _on_remove_clicked(self) -> None:
        url = self.servers_box.selected_url()
        if not url or self._remove_dialog is not None:
            return
        self._remove_dialog = ask_to_confirm(
            self,
            title="Remove server",
            text=f"Remove {host_port(url)} from the list?",
            object_name="removeServerDialog",
            informative="Its account goes too, so its models leave the chat's picker. The server keeps running.",
            action="Remove",
            on_answer=lambda confirmed: self._on_remove_answered(confirmed, url),
        )

    def _on_remove_answered(self, confirmed: bool, url: str) -> None:
        self._remove_dialog = None
        if confirmed and self.forget(url):
            self.server_removed.emit(url)
            if self._local is not None:
                self._tasks.spawn(self.forget_account(url))

    def _on_start_here_clicked(self) -> None:
        self.form.focus_model()

    def _on_servers_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        row = self.servers_box.selected_row()
        if row is not None and row.router_mode and row.url != self._router_url:
            self._set_router(row.url)
            self._tasks.spawn(self.refresh_router())

    def _on_load_clicked(self) -> None:
        self._tasks.spawn(self.router_load(self.router_box.selected_model()))

    def _on_unload_clicked(self) -> None:
        self._tasks.spawn(self.router_unload(self.router_box.selected_model()))

    def _on_switch_clicked(self) -> None:
        self._tasks.spawn(self.router_switch(self.router_box.selected_model()))

    def _on_start_clicked(self) -> None:
        self._start_from_form(None)

    def _on_stop_clicked(self) -> None:
        self._tasks.spawn(self.stop_managed())

    def _on_restart_clicked(self) -> None:
        self._tasks.spawn(self.restart_managed())

    def _on_start_router_clicked(self) -> None:
        self.form.choose_router_folder()

    def _on_library_router_clicked(self) -> None:
        self._tasks.spawn(self.start_router_over_library())

    def _on_router_folder_chosen(self, path: str) -> None:
        self._start_from_form(Path(path))

    def _on_managed_state(self, state: ManagedState) -> None:
        self._show_managed_state(state)

    def _on_managed_log(self, line: str) -> None:
        self.server_log.view.appendPlainText(line)

    # --- public: what tests and the app use ------------------------------------------------------

    @property
    def managed(self) -> ManagedServer | None:
        """The server started here (running, stopped or crashed), if any."""
        return self._here.server

    @property
    def router_url(self) -> str:
        """The router whose models the router list shows ("" when none)."""
        return self._router_url

    def reload_gguf_files(self) -> None:
        """Fill the GGUF combo from `gguf_files()` (cheap: the app scans elsewhere); keeps the choice."""
        self.form.set_gguf_files(self._gguf_files())

    def spec_from_form(self, models_dir: Path | None = None) -> ManagedServerSpec:
        """The form as a spec: on the chosen GGUF file, or a router over `models_dir`."""
        return self.form.spec(models_dir, env=self._child_env)

    @property
    def remove_dialog(self) -> QMessageBox | None:
        return self._remove_dialog

    def forget(self, url: str) -> bool:
        """Take a connected server off the list (a server started here goes with Stop)."""
        row = self.servers_model.row_at(self.servers_model.row_of(url))
        if row is None or row.source is not ServerSource.CONNECTED:
            return False
        self.servers_model.remove(url)
        if same_server(url, self._router_url):
            self._set_router(self._another_router(url))
        return True

    async def connect(self, url: str) -> ServerInfo | None:
        """Add the llama-server at `url` to the list and show what it serves; None if unreachable."""
        if not url.strip():
            self._say(self.servers_box.status, NO_URL, "error")
            return None
        url = normalise_url(url)
        self._say(self.servers_box.status, f"Connecting to {host_port(url)}…", None)
        try:
            info = await self._llamacpp.inspect(url)
        except DomainError as exc:
            self._say(self.servers_box.status, _say(exc), "error")
            return None
        self._say(self.servers_box.status, "", None)
        existing = self.servers_model.row_at(self.servers_model.row_of(url))
        source = existing.source if existing is not None else ServerSource.CONNECTED
        managed = existing.managed if existing is not None else None
        title = existing.title if existing is not None else ""
        row = self.servers_model.upsert(ServerRow(url, source, info=info, managed=managed, title=title))
        self.servers_box.view.selectRow(row)
        if info.router_mode:
            self._set_router(url)
            await self.refresh_router()
        return info

    async def list_servers(self, urls: Sequence[str]) -> None:
        """List servers known from before (the app's llama.cpp accounts) and ask each how it is doing;
        one that does not answer stays listed with the reason."""
        for url in urls:
            url = normalise_url(url)
            if self.servers_model.row_of(url) < 0:
                self.servers_model.upsert(ServerRow(url, ServerSource.CONNECTED))
        await self.refresh()
        if not self._router_url and (router := self._another_router("")):
            self._set_router(router)
            await self.refresh_router()

    async def refresh(self) -> None:
        """Ask every listed server how it is doing, then the router for its models."""
        rows = [row for row in self.servers_model.rows() if row.managed is None or row.managed.alive]
        await asyncio.gather(*(self._refresh_row(row.url) for row in rows))
        if self._router_url:
            await self.refresh_router()

    async def refresh_router(self) -> None:
        url = self._router_url
        if not url:
            return
        try:
            models = await self._llamacpp.router_models(url)
        except DomainError as exc:
            if url == self._router_url:
                # What it said before no longer holds: no models, so no actions, until it answers.
                self._say(self.router_box.status, _say(exc), "error")
                self._router_gone = True
                self.router_model.set_models([])
                self.router_models_changed.emit()
            return
        if url != self._router_url:
            return
        if self._router_gone:  # it answers again
            self._router_gone = False
            self._say(self.router_box.status, "", None)
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
        if self._here.server is not None:
            await self.stop_managed()
        managed = await self._here.replace(spec, binary_setting=self.form.binary_edit.text().strip())
        self._attach(managed)
        self.server_log.view.clear()
        self.server_log.title.setText(f"{'Router over' if spec.router else 'Serving'} {spec.title}")
        self._say(self.form.start_status, "", None)
        self.start_error = None
        try:
            state = await managed.start()
        except DomainError as exc:
            self.start_error = exc
            self._say(self.form.start_status, _say(exc), "error")
            if managed.state.status is not ManagedStatus.CRASHED and managed.url:
                self.servers_model.remove(managed.url)
            self._update_managed_buttons()
            return None
        await self._refresh_row(managed.url)
        if spec.router:
            self._set_router(managed.url)
            await self.refresh_router()
        return state

    async def serve_for_chat(self, model: Path, *, ctx: int = DEFAULT_CTX) -> InPicker:
        """Start `model` here as Start does, then "Use in chat" (the first-run offer's last step);
        the DomainError that stopped it is raised."""
        self.form.choose_model_file(model)
        state = await self.start_managed(ManagedServerSpec(model=model, ctx=ctx, env=self._child_env))
        if state is None:
            raise self.start_error or ServerStartFailed("llama-server did not start.", "Read its log.")
        result = await self.use_in_chat(state.url)
        if result is not None and result.error is not None:
            raise result.error
        assert result is not None
        return result

    async def stop_managed(self) -> None:
        """Stop the server started here (only that process) and take it off the list."""
        managed = self._here.server
        if managed is None:
            return
        await managed.stop()
        self.servers_model.remove(managed.url)
        if self._router_url and same_server(self._router_url, managed.url):
            self._set_router(self._another_router(managed.url))
        self.server_log.crash_notice.hide()
        self._update_managed_buttons()

    async def restart_managed(self) -> ManagedState | None:
        """Start the server started here again (after a crash, or to apply nothing new)."""
        managed = self._here.server
        if managed is None:
            return None
        self._say(self.form.start_status, "", None)
        self.server_log.view.appendPlainText("")
        try:
            state = await managed.restart()
        except DomainError as exc:
            self._say(self.form.start_status, _say(exc), "error")
            return None
        await self._refresh_row(managed.url)
        if managed.spec.router:
            self._set_router(managed.url)
            await self.refresh_router()
        return state

    async def switch_managed_model(self, path: Path) -> ManagedState | None:
        """Serve another GGUF file on the server started here: a restart with that file."""
        managed = self._here.server
        if managed is None:
            return None
        self.form.choose_model_file(Path(path))
        self.server_log.view.appendPlainText("")
        try:
            state = await managed.switch_model(Path(path))
        except DomainError as exc:
            self._say(self.form.start_status, _say(exc), "error")
            return None
        self.server_log.title.setText(f"Serving {managed.spec.title}")
        await self._refresh_row(managed.url)
        return state

    async def aclose(self) -> None:
        """Close dialogs and cancel what runs (the server started here is stopped by `ServerHere`)."""
        self._refresh_timer.stop()
        self.form.close_dialog()
        if self._remove_dialog is not None:  # it forgets itself when it finishes, then deletes itself
            self._remove_dialog.reject()
        await self._tasks.aclose()
        if self.engine_box is not None:
            await self.engine_box.aclose()
        for event in self._managed_followed:
            event.close()
        self._managed_followed.clear()

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

    async def start_router_over_library(self) -> ManagedState | None:
        """A router over every model the GGUF library found, through a folder of links to them."""
        files = list(self._gguf_files())
        if self._router_dir is None or not files:
            self._say(self.form.start_status, NO_LIBRARY_MODELS, "error")
            return None
        try:
            spec = self.spec_from_form(self._router_dir)
            linked = await asyncio.to_thread(link_models, files, self._router_dir)
        except DomainError as exc:
            self._say(self.form.start_status, _say(exc), "error")
            return None
        except OSError as exc:
            self._say(
                self.form.start_status,
                f"The router's folder of links could not be made: {exc.strerror or exc}.",
                "error",
            )
            return None
        if not linked:
            self._say(self.form.start_status, NO_LIBRARY_MODELS, "error")
            return None
        return await self.start_managed(spec)

    def _start_from_form(self, models_dir: Path | None) -> None:
        try:
            spec = self.spec_from_form(models_dir)
        except DomainError as exc:
            self._say(self.form.start_status, _say(exc), "error")
            return
        self._tasks.spawn(self.start_managed(spec))

    def _attach(self, managed: ManagedServer) -> None:
        for event in self._managed_followed:
            event.close()
        self._last_status = ""
        self._managed_followed = [
            follow(self, managed.add_state_listener, self._on_managed_state),
            follow(self, managed.add_log_listener, self._on_managed_log),
        ]

    def _show_managed_state(self, state: ManagedState) -> None:
        managed = self._here.server
        if managed is None:
            return
        if state.url and state.status is not ManagedStatus.STOPPED:
            existing = self.servers_model.row_at(self.servers_model.row_of(state.url))
            info = existing.info if existing is not None and state.status is ManagedStatus.RUNNING else None
            self.servers_model.upsert(
                ServerRow(state.url, ServerSource.MANAGED, info=info, managed=state, title=managed.spec.title)
            )
        crashed = state.status is ManagedStatus.CRASHED
        if crashed:
            self.server_log.crash_label.setText(f"{state.message} Its last lines are in the log below.")
            if self._router_url and same_server(self._router_url, state.url):
                self.router_model.set_models([])
                self.router_models_changed.emit()
        self.server_log.crash_notice.setVisible(crashed)
        self._update_managed_buttons()
        if state.status.value != self._last_status:
            self._last_status = state.status.value
            self.server_state_changed.emit(state.status.value)

    def _update_managed_buttons(self) -> None:
        state = self._here.server.state if self._here.server is not None else ManagedState()
        self.form.start_button.setEnabled(not state.alive)
        self.router_box.allow_start(not state.alive)
        self.form.stop_button.setEnabled(state.alive)
        self.server_log.restart_button.setEnabled(state.status is ManagedStatus.CRASHED)

    # --- the server list -------------------------------------------------------------------------

    async def _refresh_row(self, url: str) -> None:
        try:
            info: ServerInfo | None = await self._llamacpp.inspect(url)
            error = ""
        except DomainError as exc:
            info, error = None, exc.message
        existing = self.servers_model.row_at(self.servers_model.row_of(url))
        if existing is None:
            return  # removed meanwhile
        here = self._here.server
        if existing.managed is not None and here is not None and same_server(here.url, url):
            managed: ManagedState | None = here.state
            if not managed.alive:
                return  # it stopped while we asked; its state row says so
        else:
            managed = existing.managed
        self.servers_model.upsert(
            ServerRow(url, existing.source, info=info, error=error, managed=managed, title=existing.title)
        )
        if info is not None and info.healthy and self._local is not None:
            models = [m.id for m in info.models] if info.router_mode else [a for a in info.model_alias.split(",") if a]
            self._tasks.spawn(self._put_in_picker(url, models, existing.source is ServerSource.MANAGED))

    def _on_use_in_chat_clicked(self) -> None:
        url = self.servers_box.selected_url()
        if url and self._local is not None:
            self._tasks.spawn(self.use_in_chat(url))

    # --- the servers as accounts -----------------------------------------------------------------

    def opened(self) -> None:
        """The pane is shown for the first time: list again the servers known from before (the
        llama.cpp accounts; the one started here last time is gone with its port)."""
        if self._opened or self._local is None:
            return
        self._opened = True
        if self.engine_box is not None:
            self._tasks.spawn(self.engine_box.refresh())
        if urls := self._local.llamacpp_urls():
            self._tasks.spawn(self.list_servers(urls))

    async def use_in_chat(self, url: str) -> InPicker | None:
        """ "Use in chat": the server's account (made if need be) and its models in the chat's picker,
        then on to the chat."""
        assert self._local is not None
        result = await self._local.llamacpp_for_chat(url)
        if result.error is not None:
            self.status_message.emit(result.error.message)
            return result
        count = len(result.models)
        self.status_message.emit(
            f"{count} model{'s' if count != 1 else ''} of {result.account.label} are in the chat's picker."
        )
        self.chat_requested.emit()
        return result

    async def forget_account(self, url: str) -> None:
        """A connected server taken off the list: its account goes too."""
        assert self._local is not None
        if gone := await self._local.forget_llamacpp(url):
            self.status_message.emit(
                f"Removed {', '.join(a.label for a in gone)}; its models are no longer in the chat's picker."
            )

    async def _put_in_picker(self, url: str, models: list[str], started_here: bool) -> None:
        assert self._local is not None
        result = await self._local.llamacpp_listed(url, models, started_here=started_here)
        if result.error is not None:
            self.status_message.emit(result.error.message)

    def _another_router(self, except_url: str) -> str:
        return next((row.url for row in self.servers_model.rows() if row.router_mode and row.url != except_url), "")

    # --- router ----------------------------------------------------------------------------------

    def _set_router(self, url: str) -> None:
        if url != self._router_url:
            self._router_gone = False
            self.router_model.set_models([])
            self._say(self.router_box.status, "", None)
        self._router_url = url
        self.router_box.show_router(url)

    async def _load_and_wait(self, url: str, model: str) -> None:
        await self._llamacpp.load(url, model)
        await self._llamacpp.wait_model(url, model, RouterModelStatus.LOADED)

    async def _unload_and_wait(self, url: str, model: str) -> None:
        await self._llamacpp.unload(url, model)
        await self._llamacpp.wait_model(url, model, RouterModelStatus.UNLOADED)

    async def _router_op(
        self, model: str, verb: str, operation: Callable[[str, str], Coroutine[Any, Any, Any]]
    ) -> bool:
        url = self._router_url
        if not url or not model:
            return False
        self._say(self.router_box.status, f"{verb} {model}…", None)
        work = asyncio.ensure_future(operation(url, model))
        try:
            # The list follows the router while it works (loading… loaded).
            while not work.done():
                await asyncio.wait({work}, timeout=ROUTER_POLL_S)
                await self.refresh_router()
            work.result()
        except DomainError as exc:
            self._say(self.router_box.status, _say(exc), "error")
            return False
        finally:
            if not work.done():  # cancelled: the router finishes on its own; we stop waiting
                work.cancel()
        self._say(self.router_box.status, "", None)
        await self.refresh_router()
        await self._refresh_row(url)
        return True

    # --- small helpers ------------------------------------------------------------------------------

    def _say(self, label: QLabel, text: str, tone: str | None) -> None:
        label.setText(text)
        set_tone(label, tone)
        label.setVisible(bool(text))
