"""The Local models pane for one Ollama host: what is installed, what runs, and pulls.

Layout: the host line on top; the installed models (filter, sortable table, Load / Copy / Delete)
beside the selected model's details; below, the running models (Unload) beside the pull box and
the list of pulls. The service publishes pull progress at most ~20 times a second per pull; each
snapshot replaces one row of `PullJobsModel`, which the delegate paints (bar, bytes, speed, time
left, layers, and the row's Cancel / Resume / Retry / Remove buttons). Pulls belong to the
service, not the pane: closing the pane leaves them running. With `LocalServers`, installed
models go into the chat's picker (in_picker.py). The details box is a `DetailsView`
(details.py), the pull box a `PullsBox` (pulls_box.py), the Delete and Copy dialogs in
model_dialogs.py; the pane keeps the async work.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QCloseEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import DomainError
from desktop_app.domain.ollama import (
    HostStatus,
    ModelDetails,
    OllamaHost,
    PullProgress,
    PullState,
    UnfinishedPull,
    canonical_name,
)
from desktop_app.services.local.ollama import OllamaService, PullJob
from desktop_app.services.local.ollama_hosts import OllamaHosts, same_url
from desktop_app.services.local.servers import LocalServers
from desktop_app.ui.common.events import follow
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.ollama.details import NO_SELECTION_HINT, DetailsView
from desktop_app.ui.ollama.hosts import HostBar
from desktop_app.ui.ollama.in_picker import HostsInPicker
from desktop_app.ui.ollama.model_dialogs import ModelDialogsMixin
from desktop_app.ui.ollama.models import (
    EMBEDDINGS_TIP,
    InstalledModelsModel,
    NameRole,
    PullJobsModel,
    RunningModelsModel,
    SortRole,
)
from desktop_app.ui.ollama.pulls_box import PullsBox
from desktop_app.ui.ollama.widgets import table, titled
from desktop_app.ui.theme import set_tone

SUGGESTED_MODEL = "llama3.2"
NO_MODELS_HINT = f"No models are installed on this Ollama yet. Pull one to start, for example {SUGGESTED_MODEL}."
NO_RUNNING_HINT = "No model is loaded. Select an installed model and press Load."
RUNNING_POLL_MS = 15_000  # /api/ps again while shown: models unload by themselves when idle


class OllamaPane(ModelDialogsMixin, QWidget):
    """Over 30 methods on purpose: each action is a one-line slot over an async method tests await."""

    chat_requested = Signal(str, str)  # account id, model name: chat with it (it is in the picker)
    status_message = Signal(str)  # a sentence for the window's status bar
    installed_listed = Signal(object, list)  # OllamaHost, the names installed there
    refreshed = Signal()
    pull_finished = Signal(str, str)  # model name, outcome: "done" | "failed" | "cancelled"
    details_shown = Signal(str)  # model name

    def __init__(
        self,
        *,
        ollama: OllamaService,
        hosts: OllamaHosts | None = None,
        local: LocalServers | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._ollama = ollama
        self._hosts = hosts
        self._in_picker = HostsInPicker(local, say=self.status_message.emit) if local is not None else None
        self._opened = False
        self._tasks = TaskOwner("OllamaPane")
        self._status: HostStatus | None = None
        self._generation = 0
        self._details_generation = 0
        self._details_name: str | None = None
        self._delete_dialog: QMessageBox | None = None
        self._copy_dialog: QInputDialog | None = None
        self._refresh_error_shown = False  # the status line shows why the last refresh failed
        self._listing_error: DomainError | None = None  # Ollama answered, but not with its models
        self.installed_model = InstalledModelsModel(parent=self)
        self.running_model = RunningModelsModel(parent=self)
        self.jobs_model = PullJobsModel(parent=self)
        self._build()
        self._connect()
        self._pulls_followed = follow(self, ollama.add_pull_listener, self._on_pull_progress)
        for job in ollama.pull_jobs():  # pulls started before this pane existed
            self.jobs_model.update(job.progress())
        self._poll = QTimer(self, interval=RUNNING_POLL_MS)
        self._poll.timeout.connect(self._on_poll_timeout)
        self._update_states()

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.host_bar = HostBar(current=self._ollama.host, hosts=self._hosts)
        self.refresh_button = QPushButton(
            "Refresh", objectName="refresh", toolTip="Ask Ollama again what is installed and running"
        )
        top = QHBoxLayout()
        top.addWidget(self.host_bar, 1)
        top.addWidget(self.refresh_button)

        # Installed models, with the empty state in the same place.
        self.filter_edit = QLineEdit(
            objectName="installedFilter", placeholderText="Filter models", clearButtonEnabled=True
        )
        self.installed_proxy = QSortFilterProxyModel(self)
        self.installed_proxy.setSourceModel(self.installed_model)
        self.installed_proxy.setSortRole(SortRole)
        self.installed_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.installed_proxy.setFilterKeyColumn(-1)
        self.installed_view = table("installedModels", self.installed_proxy)
        self.installed_view.sortByColumn(InstalledModelsModel.NAME, Qt.SortOrder.AscendingOrder)
        self.load_button = QPushButton("Load", objectName="load", toolTip="Load the selected model into memory")
        self.chat_button = QPushButton(
            "Chat with it", objectName="chatWith", toolTip="Open the chat with the selected model picked"
        )
        self.copy_button = QPushButton("Copy…", objectName="copy", toolTip="Copy the selected model under another name")
        self.delete_button = QPushButton(
            "Delete…", objectName="delete", toolTip="Delete the selected model from Ollama"
        )
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.chat_button)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        table_page = QWidget()
        table_layout = QVBoxLayout(table_page)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.filter_edit)
        table_layout.addWidget(self.installed_view, 1)
        table_layout.addLayout(buttons)

        self.empty_label = QLabel(objectName="emptyHint", wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setTextFormat(Qt.TextFormat.PlainText)
        self.empty_button = QPushButton(objectName="emptyAction")
        empty_page = QFrame(
            frameShape=QFrame.Shape.StyledPanel, autoFillBackground=True, backgroundRole=QPalette.ColorRole.Base
        )
        empty_layout = QVBoxLayout(empty_page)
        empty_layout.addStretch(1)
        empty_layout.addWidget(self.empty_label)
        empty_layout.addWidget(self.empty_button, 0, Qt.AlignmentFlag.AlignHCenter)
        empty_layout.addStretch(1)
        self._installed_stack = QStackedWidget()
        self._installed_stack.addWidget(table_page)
        self._installed_stack.addWidget(empty_page)
        self._table_page, self._empty_page = table_page, empty_page
        installed_box = titled("Installed models", self._installed_stack)

        # Details of the selected model.
        details = self.details = DetailsView()
        details_box = titled("Details", details)

        # Running models.
        self.running_view = table("runningModels", self.running_model, sortable=False)
        self.running_hint = QLabel(NO_RUNNING_HINT, objectName="runningHint", wordWrap=True)
        self.running_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.unload_button = QPushButton(
            "Unload", objectName="unload", toolTip="Free the memory the selected running model holds"
        )
        running_buttons = QHBoxLayout()
        running_buttons.addWidget(self.running_hint, 1)
        running_buttons.addStretch()  # keeps Unload at its size while the hint is hidden
        running_buttons.addWidget(self.unload_button)
        running_widget = QWidget()
        running_layout = QVBoxLayout(running_widget)
        running_layout.setContentsMargins(0, 0, 0, 0)
        running_layout.addWidget(self.running_view, 1)
        running_layout.addLayout(running_buttons)
        running_box = titled("Running", running_widget)

        # Pulls.
        pulls = self.pulls = PullsBox(model=self.jobs_model)
        pulls_box = titled("Pull a model", pulls)

        upper = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        upper.addWidget(installed_box)
        upper.addWidget(details_box)
        upper.setStretchFactor(0, 7)
        upper.setStretchFactor(1, 5)
        lower = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        lower.addWidget(running_box)
        lower.addWidget(pulls_box)
        lower.setStretchFactor(0, 1)
        lower.setStretchFactor(1, 1)
        content = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        content.addWidget(upper)
        content.addWidget(lower)
        content.setStretchFactor(0, 3)
        content.setStretchFactor(1, 2)
        # Initial shares (scaled to the real size): the details need room for their five tabs.
        upper.setSizes([700, 500])
        lower.setSizes([500, 500])
        content.setSizes([450, 300])
        self._splitters = (upper, lower, content)

        self.status_label = QLabel(objectName="status", wordWrap=True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(content, 1)
        layout.addWidget(self.status_label)

    def _connect(self) -> None:
        self.refresh_button.clicked.connect(self._on_refresh_clicked)
        self.host_bar.host_chosen.connect(self._on_host_chosen)
        self.host_bar.message.connect(self._on_host_message)
        self.chat_button.clicked.connect(self._on_chat_clicked)
        self.filter_edit.textChanged.connect(self.installed_proxy.setFilterFixedString)
        self.installed_view.selectionModel().currentRowChanged.connect(self._on_installed_current_changed)
        self.installed_model.modelReset.connect(self._update_states)
        self.running_model.modelReset.connect(self._update_states)
        self.running_view.selectionModel().selectionChanged.connect(self._update_states)
        self.jobs_model.rowsInserted.connect(self._update_states)
        self.jobs_model.rowsRemoved.connect(self._update_states)
        self.load_button.clicked.connect(self._on_load_clicked)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.unload_button.clicked.connect(self._on_unload_clicked)
        self.pulls.button.clicked.connect(self._on_pull_clicked)
        self.pulls.edit.returnPressed.connect(self._on_pull_clicked)
        self.pulls.edit.textChanged.connect(self._update_states)
        self.empty_button.clicked.connect(self._on_empty_action_clicked)
        self.pulls.delegate.action_requested.connect(self._on_job_action_requested)

    # --- slots: one line each, the work is in the async methods below ---------------------------

    def _on_refresh_clicked(self) -> None:
        self._tasks.spawn(self.refresh())

    def _on_host_chosen(self, host: OllamaHost) -> None:
        self._tasks.spawn(self.show_host(host))

    def _on_host_message(self, text: str, error: bool) -> None:
        self._show_status(DomainError(text) if error else None, "" if error else text)

    def _on_chat_clicked(self) -> None:
        if (name := self.selected_installed()) is not None and self._in_picker is not None:
            self._tasks.spawn(self.chat_with(name))

    def _on_poll_timeout(self) -> None:
        self._tasks.spawn(self.refresh_running())

    def _on_installed_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_states()
        name = current.data(NameRole) if current.isValid() else None
        if name is not None and name != self._details_name:
            self._tasks.spawn(self.show_details(name))

    def _on_load_clicked(self) -> None:
        if (name := self.selected_installed()) is not None:
            self._tasks.spawn(self.load(name))

    def _on_unload_clicked(self) -> None:
        if (name := self.selected_running()) is not None:
            self._tasks.spawn(self.unload(name))

    def _on_pull_clicked(self) -> None:
        self._tasks.spawn(self.pull(self.pulls.edit.text()))

    def _on_delete_clicked(self) -> None:
        if (name := self.selected_installed()) is not None:
            self._open_delete_dialog(name)

    def _on_copy_clicked(self) -> None:
        if (name := self.selected_installed()) is not None:
            self._open_copy_dialog(name)

    def _on_empty_action_clicked(self) -> None:
        if (self._status is not None and not self._status.reachable) or self._listing_error is not None:
            self._tasks.spawn(self.refresh())
        else:
            self.pulls.edit.setText(SUGGESTED_MODEL)
            self._tasks.spawn(self.pull(SUGGESTED_MODEL))

    def _on_job_action_requested(self, name: str, action: str) -> None:
        if action == "cancel":
            self._tasks.spawn(self.cancel(name))
        elif action in ("resume", "retry"):
            self._tasks.spawn(self.pull(name))
        else:
            self._tasks.spawn(self.forget(name))

    def _on_pull_progress(self, progress: PullProgress) -> None:
        self.jobs_model.update(progress)
        if progress.state.finished:
            self._tasks.spawn(self._after_pull(progress))

    # --- public --------------------------------------------------------------------------------

    @property
    def host_status(self) -> HostStatus | None:
        return self._status

    @property
    def showing_empty_state(self) -> bool:
        return self._installed_stack.currentWidget() is self._empty_page

    def selected_installed(self) -> str | None:
        index = self.installed_view.currentIndex()
        return index.data(NameRole) if index.isValid() else None

    def selected_running(self) -> str | None:
        rows = self.running_view.selectionModel().selectedRows()
        return rows[0].data(NameRole) if rows else None

    def select_installed(self, name: str) -> bool:
        for row in range(self.installed_proxy.rowCount()):
            index = self.installed_proxy.index(row, 0)
            if index.data(NameRole) == name:
                self.installed_view.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
                )
                return True
        return False

    def select_running(self, name: str) -> bool:
        for row in range(self.running_model.rowCount()):
            index = self.running_model.index(row, 0)
            if index.data(NameRole) == name:
                self.running_view.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
                )
                return True
        return False

    @property
    def service(self) -> OllamaService:
        return self._ollama

    async def show_host(self, host: OllamaHost) -> None:
        """Show another host: its service (pulls there keep running when the user looks away)."""
        if self._hosts is None:
            return
        service = await self._hosts.service(host)
        if service is not self._ollama:
            self._pulls_followed.close()
            self._ollama = service
            self._pulls_followed = follow(self, service.add_pull_listener, self._on_pull_progress)
            self._generation += 1  # an answer from the previous host is no longer wanted
            self._status = None
            self._poll.stop()
            self._set_installed([])
            self.running_model.set_rows([])
            self.jobs_model.clear()
            for job in service.pull_jobs():
                self.jobs_model.update(job.progress())
            self._clear_details()
            self._show_status(None)
            self._update_states()
        await self.refresh()

    async def refresh(self) -> None:
        """Ask the host whether it is up, then what is installed, running and left unfinished."""
        self._generation += 1
        generation = self._generation
        self.refresh_button.setEnabled(False)
        try:
            status = await self._ollama.host_status()
            installed = running = None
            unfinished: list[UnfinishedPull] = []
            error: DomainError | None = None
            if status.reachable:
                try:
                    installed, running = await asyncio.gather(self._ollama.installed(), self._ollama.running())
                except DomainError as exc:
                    error = exc
            unfinished = await self._ollama.unfinished_pulls()
        finally:
            self.refresh_button.setEnabled(True)
        if generation != self._generation:
            return
        self._status = status
        self._listing_error = error
        self.host_bar.set_status(status)
        if installed is not None and running is not None:
            self._set_installed(installed)
            names = [m.name for m in installed if m.can_chat]
            self.installed_listed.emit(self.host_bar.current, names)
            if self._in_picker is not None:
                self._tasks.spawn(self._in_picker.listed(self.host_bar.current, names))
            self.running_model.set_rows(running)
            if self._refresh_error_shown:
                self._show_status(None)
        else:
            self._set_installed([])
            self.running_model.set_rows([])
            if error is not None:
                self._show_status(error)
                self._refresh_error_shown = True
        for pull in unfinished:
            if self._ollama.pull_job(pull.model) is None:  # left over from an earlier run
                # One cut off by quitting shows as paused: nothing runs it now.
                state = PullState.FAILED if pull.state is PullState.FAILED else PullState.CANCELLED
                error = DomainError(pull.message, "Resume it to try again.") if pull.message else None
                self.jobs_model.update(
                    PullProgress(
                        model=pull.model,
                        status=state.value,
                        completed=pull.completed,
                        total=pull.total,
                        state=state,
                        error=error,
                    )
                )
        self._update_states()
        if self.isVisible() and status.reachable:
            self._poll.start()
        self.refreshed.emit()
        if self._hosts is not None:
            self._tasks.spawn(self._check_other_hosts())

    async def _check_other_hosts(self) -> None:
        """Whether each other host answers, and its version, for the host picker."""
        assert self._hosts is not None
        others = [h for h in self._hosts.hosts() if not same_url(h.url, self._ollama.host.url)]
        services = [await self._hosts.service(h) for h in others]
        for status in await asyncio.gather(*(s.host_status() for s in services)):
            self.host_bar.set_status(status)

    async def refresh_running(self) -> None:
        try:
            running = await self._ollama.running()
        except DomainError:
            return  # the next full refresh says what is wrong
        self._keep_selection(self.running_view, lambda: self.running_model.set_rows(running))

    async def pull(self, name: str) -> PullJob | None:
        """Start pulling `name` (or resume it); progress arrives through the service's listener."""
        try:
            job = self._ollama.start_pull(name)
        except DomainError as exc:
            self._show_status(exc)
            return None
        self.jobs_model.update(job.progress())
        if canonical_name(self.pulls.edit.text()) == job.name:
            self.pulls.edit.clear()
        return job

    async def cancel(self, name: str) -> PullProgress | None:
        return await self._ollama.cancel_pull(name)

    async def forget(self, name: str) -> None:
        job = self._ollama.pull_job(name)
        if job is not None and not job.state.finished:
            await self._ollama.cancel_pull(name)
        await self._ollama.forget_pull(name)
        self.jobs_model.remove(canonical_name(name))

    async def delete(self, name: str, confirmed: bool) -> bool:
        """Delete `name`; unconfirmed, this opens the confirmation (non-modal) and returns False."""
        if not confirmed:
            self._open_delete_dialog(name)
            return False
        try:
            await self._ollama.delete(name)
        except DomainError as exc:
            self._show_status(exc)
            return False
        if self._details_name == name:
            self._clear_details()
        self._show_status(None, f"Deleted {name}.")
        await self.refresh()
        return True

    async def copy(self, source: str, destination: str) -> bool:
        try:
            await self._ollama.copy(source, destination)
        except DomainError as exc:
            self._show_status(exc)
            return False
        self._show_status(None, f"Copied {source} to {canonical_name(destination)}.")
        await self.refresh()
        self.select_installed(canonical_name(destination))
        return True

    async def load(self, name: str) -> bool:
        self.load_button.setEnabled(False)
        self._show_status(None, f"Loading {name}…")
        try:
            await self._ollama.load(name)
            running = await self._ollama.running()
        except DomainError as exc:
            self._show_status(exc)
            return False
        finally:
            self._update_states()
        self.running_model.set_rows(running)
        self.select_running(name)
        self._show_status(None, f"{name} is loaded.")
        return True

    async def unload(self, name: str) -> bool:
        try:
            await self._ollama.unload(name)
            running = await self._ollama.running()
        except DomainError as exc:
            self._show_status(exc)
            return False
        self.running_model.set_rows(running)
        self._show_status(None, f"{name} is unloaded.")
        return True

    async def show_details(self, name: str) -> ModelDetails | None:
        self._details_generation += 1
        generation = self._details_generation
        self._details_name = name
        try:
            details = await self._ollama.details(name)
        except DomainError as exc:
            if generation == self._details_generation:
                self._clear_details(f"{exc.message} {exc.action}".strip())
            return None
        if generation != self._details_generation:
            return None
        self.details.show_model(details)
        self.details_shown.emit(name)
        return details

    def opened(self) -> None:
        """First shown: look for the host now, not at start-up (no connection the user did not ask for)."""
        if not self._opened:
            self._opened = True
            self._tasks.spawn(self.show_host(self.host_bar.current))

    async def chat_with(self, name: str) -> None:
        assert self._in_picker is not None
        self.chat_requested.emit((await self._in_picker.chat_with(self.host_bar.current, name)).account.id, name)

    async def aclose(self) -> None:
        """Stop following pulls, close the dialogs and cancel what runs; before the pane is deleted."""
        self._pulls_followed.close()
        await self.host_bar.aclose()
        self._poll.stop()
        for dialog in (self._delete_dialog, self._copy_dialog):
            if dialog is not None:  # each forgets itself when it finishes, then deletes itself
                dialog.reject()
        await self._tasks.aclose()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._poll.stop()
        self._tasks.cancel_all()
        super().closeEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._status is not None and self._status.reachable:
            self._poll.start()

    def hideEvent(self, event) -> None:
        self._poll.stop()
        super().hideEvent(event)

    # --- showing -------------------------------------------------------------------------------

    async def _after_pull(self, progress: PullProgress) -> None:
        if progress.state is PullState.DONE:
            self._show_status(None, f"Pulled {progress.model}.")
            await self.refresh()
        elif progress.state is PullState.FAILED and progress.error is not None:
            self._show_status(progress.error)
        self.pull_finished.emit(progress.model, progress.state.value)

    def _set_installed(self, models) -> None:
        self._keep_selection(self.installed_view, lambda: self.installed_model.set_rows(models))
        if self._details_name is not None and self._details_name not in self.installed_model.names():
            self._clear_details()

    def _keep_selection(self, view: QTableView, change) -> None:
        """Apply `change` (which may reset the model) and select the same model again."""
        current = view.currentIndex()
        name = current.data(NameRole) if current.isValid() else None
        change()
        if name is None:
            return
        model = view.model()
        for row in range(model.rowCount()):
            index = model.index(row, 0)
            if index.data(NameRole) == name:
                view.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
                )
                return

    def _show_status(self, error: DomainError | None, text: str = "") -> None:
        self._refresh_error_shown = False
        if error is not None:
            text = f"{error.message} {error.action}".strip()
        self.status_label.setText(text)
        set_tone(self.status_label, "error" if error is not None else None)
        self.status_label.setVisible(bool(text))

    def _clear_details(self, message: str = NO_SELECTION_HINT) -> None:
        self._details_name = None
        self.details.clear(message)

    def _update_states(self, *_args: object) -> None:
        reachable = self._status is not None and self._status.reachable
        has_models = self.installed_model.rowCount() > 0
        if self._status is not None and (not reachable or self._listing_error is not None):
            # A listing that failed is no empty list: say why, and offer to ask again.
            error = self._listing_error
            self.empty_label.setText(
                f"{error.message} {error.action}".strip() if reachable and error else self._status.sentence
            )
            self.empty_button.setText("Try again")
            self._installed_stack.setCurrentWidget(self._empty_page)
        elif self._status is not None and not has_models:
            self.empty_label.setText(NO_MODELS_HINT)
            self.empty_button.setText(f"Pull {SUGGESTED_MODEL}")
            self._installed_stack.setCurrentWidget(self._empty_page)
        else:
            self._installed_stack.setCurrentWidget(self._table_page)
        selected = self.selected_installed() is not None
        chat = selected and self._selected_row_can_chat()
        self.load_button.setEnabled(reachable and selected and chat)
        self.chat_button.setEnabled(reachable and chat)
        self.chat_button.setToolTip(
            "Open the chat with the selected model picked" if chat or not selected else EMBEDDINGS_TIP
        )
        self.copy_button.setEnabled(reachable and selected)
        self.delete_button.setEnabled(reachable and selected)
        self.unload_button.setEnabled(reachable and self.selected_running() is not None)
        self.running_hint.setVisible(self.running_model.rowCount() == 0)
        self.pulls.button.setEnabled(reachable and bool(self.pulls.edit.text().strip()))
        self.pulls.edit.setEnabled(reachable)
        self.pulls.hint.setVisible(self.jobs_model.rowCount() == 0)

    def _selected_row_can_chat(self) -> bool:
        index = self.installed_proxy.mapToSource(self.installed_view.currentIndex())
        row = self.installed_model.row_at(index.row()) if index.isValid() else None
        return row is None or row.can_chat
