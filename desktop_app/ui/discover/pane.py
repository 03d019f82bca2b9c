"""The Discover pane: find GGUF models on Hugging Face, see which fit this machine, download, run.

Top: a search (sorted by downloads, likes or recent updates) and its hits; beside them the chosen
repo's model files (split parts as one) with a fit badge each. The badges come from one GGUF header
read by HTTP range (a few MB, never the weights) and the hardware found here, at the context length
chosen in the Hardware box. Bottom: that box, and the downloads (several at once, Cancel keeps the
bytes, Resume continues, also after a restart). Run hands a downloaded file to `run_model` (the
app serves it on the local engine and opens the chat) and shows the sentence it returns.
Every network call is an async method tests await; slots only start them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import DomainError
from desktop_app.domain.hub import HardwareInfo, HubRepo, HubSort, ModelShape, QuantFile, fit_all, gb
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.local.hardware import detect_hardware
from desktop_app.services.local.hf_downloads import DownloadRequest, HubDownloads
from desktop_app.services.local.hf_hub import HubClient
from desktop_app.services.local.ollama_pulls import PullJob
from desktop_app.ui.common.events import follow
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.discover.models import DownloadDelegate, DownloadsModel, FileRow, QuantFilesModel, ReposModel
from desktop_app.ui.llamacpp.widgets import status_label, table
from desktop_app.ui.theme import set_tone

DEFAULT_CONTEXT = 8192
SORTS = (("Most downloaded", HubSort.DOWNLOADS), ("Most liked", HubSort.LIKES), ("Recently updated", HubSort.RECENT))
NO_HITS = "No GGUF model on Hugging Face matches “{query}”."
NO_FILES = "This repo holds no GGUF model file."
PICK_A_REPO = "Pick a model on the left to see its files and whether they fit this machine."
NO_DOWNLOADS = "Downloads appear here with their progress; one cut off or left from last time can be resumed."

RunModel = Callable[[Path], Awaitable[str]]  # "" once it runs and the chat has it, else why not


def _say(exc: DomainError) -> str:
    return f"{exc.message} {exc.action}".strip()


def _is_projector(quant: QuantFile) -> bool:
    return quant.name.rsplit("/", 1)[-1].lower().startswith("mmproj")


class DiscoverPane(QWidget):
    status_message = Signal(str)  # a sentence for the window's status bar
    downloaded = Signal(str)  # a download finished (its key): the GGUF library lists it

    def __init__(
        self,
        *,
        hub: HubClient,
        downloads: HubDownloads,
        run_model: RunModel | None = None,
        hardware: Callable[[], Awaitable[HardwareInfo]] = detect_hardware,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._hub, self._downloads, self._run_model, self._detect = hub, downloads, run_model, hardware
        self._tasks = TaskOwner("DiscoverPane")
        self._search_task: asyncio.Task[Any] | None = None
        self._repo_task: asyncio.Task[Any] | None = None
        self._opened = False
        self.repo: HubRepo | None = None  # the repo whose files are shown (its details: sha, licence)
        self.shape: ModelShape | None = None  # from its header, once read
        self.header_read = False  # the shape is known (None: the header lacks the numbers)
        self.hardware: HardwareInfo | None = None
        self._requests: dict[str, DownloadRequest] = {}  # the downloads listed, by key
        self.repos_model = ReposModel(self)
        self.files_model = QuantFilesModel(self)
        self.downloads_model = DownloadsModel(self)
        self._build()
        self._connect()
        self._followed = follow(self, downloads.add_listener, self._on_download_progress)
        self._update_buttons()
        self._update_downloads_hint()

    # --- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.search_edit = QLineEdit(
            objectName="hubSearch", placeholderText="Search Hugging Face for GGUF models, e.g. gemma, qwen, llama"
        )
        self.search_edit.setClearButtonEnabled(True)
        self.sort_combo = QComboBox(objectName="hubSort", accessibleName="Sort by")
        for label, sort in SORTS:
            self.sort_combo.addItem(label, sort)
        self.search_button = QPushButton("Search", objectName="hubSearchButton")
        self.search_status = status_label("hubSearchStatus")
        self.repos_view = table("hubRepos")
        self.repos_view.setModel(self.repos_model)
        self.repos_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.repos_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ReposModel.MODEL, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)

        self.repo_title = QLabel(PICK_A_REPO, objectName="hubRepoTitle", wordWrap=True)
        self.repo_title.setTextFormat(Qt.TextFormat.PlainText)
        self.files_view = table("hubFiles")
        self.files_view.setModel(self.files_model)
        files_header = self.files_view.horizontalHeader()
        files_header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        files_header.setSectionResizeMode(QuantFilesModel.FILE, QHeaderView.ResizeMode.Stretch)
        files_header.setStretchLastSection(False)
        self.files_status = status_label("hubFilesStatus")
        self.download_button = QPushButton("Download", objectName="hubDownload", toolTip="Download the chosen file")
        self.run_button = QPushButton(
            "Run", objectName="hubRun", toolTip="Start the downloaded file on the local engine and chat with it"
        )
        self.run_status = status_label("hubRunStatus")

        self.ram_label = QLabel("…", objectName="hardwareRam")
        self.cpu_label = QLabel("…", objectName="hardwareCpu", wordWrap=True)
        self.gpu_label = QLabel("Looking for GPUs…", objectName="hardwareGpus", wordWrap=True)
        self.hardware_notes = status_label("hardwareNotes")
        self.context_spin = QSpinBox(
            objectName="fitContext",
            minimum=512,
            maximum=1 << 20,
            value=DEFAULT_CONTEXT,
            singleStep=1024,
            suffix=" tokens",
            toolTip="The context length the memory estimates are made for (the KV cache grows with it)",
        )
        self.context_spin.setGroupSeparatorShown(True)

        self.downloads_view = QListView(objectName="hubDownloads")
        self.downloads_view.setModel(self.downloads_model)
        self.download_delegate = DownloadDelegate(self.downloads_view)
        self.downloads_view.setItemDelegate(self.download_delegate)
        self.downloads_view.setUniformItemSizes(True)
        self.downloads_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.downloads_view.setMouseTracking(True)
        self.downloads_hint = QLabel(NO_DOWNLOADS, objectName="hubDownloadsHint", wordWrap=True)
        self.downloads_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.download_status = status_label("hubDownloadStatus")
        self._lay_out()

    def _lay_out(self) -> None:
        search_row = QHBoxLayout()
        search_row.addWidget(self.search_edit, 1)
        search_row.addWidget(self.sort_combo)
        search_row.addWidget(self.search_button)
        results = QWidget()
        results_column = QVBoxLayout(results)
        results_column.setContentsMargins(0, 0, 0, 0)
        results_column.addLayout(search_row)
        results_column.addWidget(self.search_status)
        results_column.addWidget(self.repos_view, 1)

        files = QGroupBox("Files", objectName="hubFilesBox")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.run_button)
        files_column = QVBoxLayout(files)
        files_column.addWidget(self.repo_title)
        files_column.addWidget(self.files_view, 1)
        files_column.addWidget(self.files_status)
        files_column.addLayout(buttons)
        files_column.addWidget(self.run_status)

        machine = QGroupBox("Hardware", objectName="hardwareBox")
        form = QFormLayout(machine)
        form.addRow("RAM", self.ram_label)
        form.addRow("CPU", self.cpu_label)
        form.addRow("GPU", self.gpu_label)
        form.addRow("", self.hardware_notes)
        form.addRow("Context length", self.context_spin)

        downloads = QGroupBox("Downloads", objectName="hubDownloadsBox")
        downloads_column = QVBoxLayout(downloads)
        downloads_column.addWidget(self.downloads_view, 1)
        downloads_column.addWidget(self.downloads_hint)
        downloads_column.addWidget(self.download_status)

        top = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        top.addWidget(results)
        top.addWidget(files)
        top.setSizes([2000, 3000])
        bottom = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        bottom.addWidget(machine)
        bottom.addWidget(downloads)
        bottom.setSizes([2000, 3000])
        rows = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        rows.addWidget(top)
        rows.addWidget(bottom)
        rows.setSizes([3000, 1600])
        layout = QVBoxLayout(self)
        layout.addWidget(rows)

    def _connect(self) -> None:
        self.search_button.clicked.connect(self._on_search_clicked)
        self.search_edit.returnPressed.connect(self._on_search_clicked)
        self.sort_combo.currentIndexChanged.connect(self._on_search_clicked)
        self.repos_view.selectionModel().selectionChanged.connect(self._on_repo_selected)
        self.files_view.selectionModel().selectionChanged.connect(self._on_file_selected)
        self.download_button.clicked.connect(self._on_download_clicked)
        self.run_button.clicked.connect(self._on_run_clicked)
        self.context_spin.valueChanged.connect(self._on_context_changed)
        self.download_delegate.action_requested.connect(self._on_download_action)
        self.downloads_model.rowsInserted.connect(self._update_downloads_hint)
        self.downloads_model.rowsRemoved.connect(self._update_downloads_hint)

    # --- slots: one line each, the work is in the async methods below ---------------------------

    def _on_search_clicked(self) -> None:
        self._search_task = self._replace(self._search_task, self.search(self.search_edit.text()))

    def _on_repo_selected(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        repo = self.repos_model.row_at(self._selected_row(self.repos_view))
        if repo is not None and (self.repo is None or repo.id != self.repo.id):
            self._repo_task = self._replace(self._repo_task, self.show_repo(repo.id))

    def _on_file_selected(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_buttons()

    def _on_download_clicked(self) -> None:
        self.download_selected()

    def _on_run_clicked(self) -> None:
        row = self.files_model.row_at(self._selected_row(self.files_view))
        if row is not None and row.local is not None:
            self._tasks.spawn(self.run(row.local))

    def _on_context_changed(self, _value: int) -> None:
        self._show_verdicts()

    def _on_download_action(self, key: str, action: str) -> None:
        self._tasks.spawn(self.download_action(key, action))

    def _on_download_progress(self, progress: PullProgress) -> None:
        self.downloads_model.update(progress)
        if progress.state is PullState.FAILED and progress.error is not None:
            self._say(self.download_status, _say(progress.error), "error")
        elif progress.state is PullState.DONE and (request := self._request(progress.model)) is not None:
            self._tasks.spawn(self._downloaded(request))

    # --- public: what tests and the app use ------------------------------------------------------

    def opened(self) -> None:
        """First shown: look at this machine, list the downloads left unfinished, and the most
        downloaded GGUF models (no request to Hugging Face before the user comes here)."""
        if not self._opened:
            self._opened = True
            self._tasks.spawn(self.start())

    async def start(self) -> None:
        await asyncio.gather(self.detect_hardware(), self.restore_downloads())
        if not self.repos_model.rowCount():
            self._search_task = self._replace(self._search_task, self.search(self.search_edit.text()))
            await asyncio.wait({self._search_task})  # a search the user starts meanwhile replaces it

    async def search(self, query: str) -> list[HubRepo]:
        """The GGUF repos matching `query`, in the chosen order; shown in the list."""
        sort = self.sort_combo.currentData()
        self._say(self.search_status, "Searching Hugging Face…", "busy")
        try:
            repos = await self._hub.search(query, sort=sort)
        except DomainError as exc:
            self._say(self.search_status, _say(exc), "error")
            return []
        self.repos_model.set_repos(repos)
        self._say(self.search_status, "" if repos else NO_HITS.format(query=query.strip()), None)
        return repos

    async def show_repo(self, repo_id: str) -> None:
        """The repo's model files, then (from one header read by range) whether each fits here."""
        self.repo, self.shape, self.header_read = None, None, False
        self.files_model.set_files([])
        self.repo_title.setText(repo_id)
        self._update_buttons()
        self._say(self.files_status, f"Listing the files of {repo_id}…", "busy")
        try:
            repo = await self._hub.repo(repo_id)
            quants = await self._hub.quant_files(repo.id, repo.sha)
            local = [await self._downloads.local_path(DownloadRequest(repo.id, q, repo.sha)) for q in quants]
        except DomainError as exc:
            self._say(self.files_status, _say(exc), "error")
            return
        self.repo = repo
        self.repo_title.setText(self._repo_line(repo))
        self.files_model.set_files([FileRow(quant, None, path) for quant, path in zip(quants, local, strict=True)])
        if quants:
            self.files_view.selectRow(0)
        self._update_buttons()
        models = [quant for quant in quants if not _is_projector(quant)]
        if not models:
            self._say(self.files_status, NO_FILES, None)
            return
        self._say(self.files_status, f"Reading the GGUF header of {models[0].name} (a few MB)…", "busy")
        try:
            _info, self.shape = await self._hub.read_header(repo.id, models[0], repo.sha)
            self.header_read = True
        except DomainError as exc:
            self._say(self.files_status, f"Whether these files fit is not known: {_say(exc)}", "error")
            return
        self._show_verdicts()

    async def detect_hardware(self) -> HardwareInfo:
        """This machine's RAM, CPU and GPUs, shown in the Hardware box; the verdicts follow."""
        self.hardware = hardware = await self._detect()
        self.ram_label.setText(f"{gb(hardware.ram_total)}, {gb(hardware.ram_available)} free")
        self.cpu_label.setText(f"{hardware.cpu_name or 'Unknown'} ({hardware.cpu_cores} cores)")
        gpus = [
            f"{gpu.name}: {gb(gpu.vram_total)} {'unified memory' if gpu.unified else 'VRAM'}"
            + (f", {gb(gpu.vram_free)} free" if gpu.vram_free is not None else "")
            for gpu in hardware.gpus
        ]
        self.gpu_label.setText("\n".join(gpus) or "None found: models run on the CPU")
        self._say(self.hardware_notes, " ".join(hardware.notes), "muted" if hardware.notes else None)
        self._show_verdicts()
        return hardware

    async def restore_downloads(self) -> list[DownloadRequest]:
        """Downloads cut off (this session or the last): listed as paused with the bytes they kept;
        those started before the pane was first shown (the first-run offer) as they stand."""
        for job in self._downloads.jobs():
            self.downloads_model.update(job.progress())
        unfinished = await self._downloads.unfinished()
        for request in unfinished:
            self._requests[request.key] = request
            kept = await self._downloads.kept_bytes(request)
            self.downloads_model.update(
                PullProgress(model=request.key, state=PullState.CANCELLED, completed=kept, total=request.quant.size)
            )
        return unfinished

    def download_selected(self) -> PullJob | None:
        """Download the chosen file of the repo shown (the running job when it already downloads)."""
        row = self.files_model.row_at(self._selected_row(self.files_view))
        if row is None or self.repo is None:
            return None
        return self.download(DownloadRequest(self.repo.id, row.quant, self.repo.sha))

    def download(self, request: DownloadRequest) -> PullJob:
        self._requests[request.key] = request
        self._say(self.download_status, "", None)
        job = self._downloads.start(request)
        self.downloads_model.update(job.progress())
        return job

    async def download_action(self, key: str, action: str) -> None:
        """A download row's button: cancel (the bytes are kept), resume, retry, run, remove."""
        request = self._request(key)
        if request is None:
            return
        if action == "cancel":
            if (final := await self._downloads.cancel(key, keep_partial=True)) is not None:
                self.downloads_model.update(final)
        elif action in ("resume", "retry"):
            self.download(request)
        elif action == "run":
            if (path := await self._downloads.local_path(request)) is not None:
                await self.run(path)
        elif action == "remove":
            progress = self.downloads_model.progress_of(key)
            if progress is not None and progress.state is not PullState.DONE:
                await self._downloads.discard(request)  # what it fetched goes too
            self.downloads_model.remove(key)
            self._requests.pop(key, None)

    async def run(self, path: Path) -> bool:
        """Start the downloaded `path` on the local engine and open the chat with it picked."""
        if self._run_model is None:
            return False
        self._say(self.run_status, f"Starting {path.name} on the local engine…", "busy")
        error = await self._run_model(path)
        if error:
            self._say(self.run_status, error, "error")
            return False
        self._say(self.run_status, f"{path.stem} runs on the local engine; the chat has it picked.", "ok")
        return True

    def selected_file(self) -> FileRow | None:
        return self.files_model.row_at(self._selected_row(self.files_view))

    async def aclose(self) -> None:
        """Cancel searches and header reads (downloads belong to the app and go on)."""
        await self._tasks.aclose()
        self._followed.close()

    # --- helpers -----------------------------------------------------------------------------------

    def _replace(self, task: asyncio.Task[Any] | None, coro: Any) -> asyncio.Task[Any]:
        """A new search (or repo) supersedes the one still on its way."""
        if task is not None and not task.done():
            task.cancel()
        return self._tasks.spawn(coro)

    def _request(self, key: str) -> DownloadRequest | None:
        return self._requests.get(key) or self._downloads.request(key)

    async def _downloaded(self, request: DownloadRequest) -> None:
        self.status_message.emit(f"{request.quant.name} downloaded; it is listed in GGUF files.")
        self.downloaded.emit(request.key)
        if self.repo is not None and request.repo_id == self.repo.id:
            self.files_model.set_local(request.quant.name, await self._downloads.local_path(request))
            self._update_buttons()

    def _show_verdicts(self) -> None:
        """Judge every file again (the hardware found, the header read, the context changed)."""
        quants = self.files_model.quants()
        if self.hardware is None or self.repo is None or not quants or not self.header_read:
            return
        self.files_model.set_verdicts(fit_all(quants, self.shape, self.hardware, self.context_spin.value()))
        self._say(self.files_status, "", None)

    def _repo_line(self, repo: HubRepo) -> str:
        parts = [repo.id, f"licence {repo.license}" if repo.license else "no licence given"]
        if repo.is_gated:
            parts.append("gated: accept its terms on Hugging Face and add a Hugging Face token in Accounts")
        return " · ".join(parts)

    def _update_buttons(self) -> None:
        row = self.selected_file()
        self.download_button.setEnabled(row is not None and row.local is None)
        self.run_button.setEnabled(row is not None and row.local is not None and self._run_model is not None)

    def _update_downloads_hint(self) -> None:
        self.downloads_hint.setVisible(not self.downloads_model.rowCount())

    @staticmethod
    def _selected_row(view: QAbstractItemView) -> int:
        rows = view.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _say(self, label: QLabel, text: str, tone: str | None) -> None:
        label.setText(text)
        set_tone(label, tone)
        label.setVisible(bool(text))
