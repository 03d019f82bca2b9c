"""The welcome's first offer, "Chat with a local model now": engine, model, server, chat, in one click.

It proposes the starter model for this machine (`domain/starter.py`) and, when clicked, does
three steps, each with its own line and progress bar: install llama.cpp if no llama-server is in
use (`EngineInstaller`), download the model into the Hugging Face cache unless it is there
(`HubDownloads`), and start it on the local engine as the llama.cpp pane's Start does (`serve`,
which is `LlamaCppPane.serve_for_chat`). Cancel stops the step under way (a download resumes
next time); a failure is one sentence and the button becomes Retry. Nothing of a failed step is
left in use: the installer and the downloads put files in place only once they are checked. A
second run finds the engine and the model on disk and asks no network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop_app.domain.engine import EngineError, Platform, pick_build, size_text
from desktop_app.domain.errors import DomainError
from desktop_app.domain.hub import HubNotFound
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.domain.starter import STARTER_CONTEXT, StarterModel, StarterPick
from desktop_app.services.local.hf_downloads import DownloadRequest, HubDownloads
from desktop_app.services.local.hf_hub import HubClient
from desktop_app.services.local.llamacpp_install import EngineInstaller, detect_platform
from desktop_app.services.local.servers import InPicker
from desktop_app.ui.common.events import follow
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.theme import set_tone

log = logging.getLogger(__name__)

OFFER = "Chat with a local model now"
Serve = Callable[[Path, int], Awaitable[InPicker]]


class _Stopped(Exception):
    """A step ended without its result: cancelled (error None) or failed."""

    def __init__(self, error: DomainError | None = None) -> None:
        super().__init__(error.message if error else "cancelled")
        self.error = error


class _Step:
    """One line of the offer's progress: what the step does, and its bar."""

    def __init__(self, grid: QGridLayout, row: int, name: str, object_name: str) -> None:
        self.name = QLabel(name)
        self.text = QLabel(objectName=f"{object_name}Text", wordWrap=True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.bar = QProgressBar(objectName=f"{object_name}Progress", textVisible=True)
        self.bar.setMinimumWidth(200)
        grid.addWidget(self.name, row, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.text, row, 1)
        grid.addWidget(self.bar, row, 2)
        self.waiting()

    def waiting(self, text: str = "", what: str = "") -> None:
        self.text.setText(text)
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setFormat(what)

    def busy(self, text: str, what: str) -> None:
        self.text.setText(text)
        self.bar.setRange(0, 0)
        self.bar.setFormat(what)

    def bytes(self, completed: int, total: int) -> None:
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(1000 * completed / total) if total else 0)
        done = size_text(completed) if completed else "0 MB"  # size_text says at least "1 MB"
        self.bar.setFormat(f"{done} of {size_text(total)}" if total else "")

    def done(self, text: str, what: str = "Done") -> None:
        self.text.setText(text)
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000)
        self.bar.setFormat(what)


class LocalModelOffer(QWidget):
    """The starter model, the button that sets it up, and the three steps' progress."""

    ready = Signal(str, str)  # account id, model: in the chat's picker, the chat shown
    running_changed = Signal(bool)

    def __init__(
        self,
        pick: StarterPick,
        *,
        engines: EngineInstaller,
        hub: HubClient,
        downloads: HubDownloads,
        serve: Serve,
        binary_setting: Callable[[], str] = lambda: "",
        platform: Callable[[], Awaitable[Platform]] = detect_platform,
        path: str | None = None,  # PATH to look for a llama-server on (None: the process's), for tests
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, objectName="localModelOffer")
        self.model: StarterModel = pick.model
        self._engines, self._hub, self._downloads, self._serve = engines, hub, downloads, serve
        self._binary_setting, self._platform, self._path = binary_setting, platform, path
        self._tasks = TaskOwner("LocalModelOffer")
        self._running: asyncio.Task[object] | None = None
        self._in_run = False
        self._engine_job = ""  # the asset being installed
        self._download_key = ""  # the model being downloaded
        self.result: InPicker | None = None

        self.about = QLabel(
            f"{self.model.description}\n{self.model.size_text} from Hugging Face ({self.model.repo}). "
            f"{pick.verdict.text}",
            objectName="localModelAbout",
            wordWrap=True,
        )
        self.about.setTextFormat(Qt.TextFormat.PlainText)
        self.how = QLabel(
            "ModelDesk installs llama.cpp (the engine that runs it) if it is not here, downloads the "
            "model and opens a chat with it. It runs on this computer: nothing you write leaves it.",
            wordWrap=True,
            foregroundRole=QPalette.ColorRole.PlaceholderText,
        )
        self.start_button = QPushButton(OFFER, objectName="startLocalModel", default=True)
        self.start_button.setToolTip(f"Set up {self.model.name} ({self.model.file}) and open a chat with it")
        self.cancel_button = QPushButton("Cancel", objectName="cancelLocalModel", autoDefault=False)
        self.cancel_button.hide()
        self.steps_box = QWidget(objectName="localModelSteps")
        grid = QGridLayout(self.steps_box)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.setColumnStretch(1, 1)
        self.engine_step = _Step(grid, 0, "Engine", "localEngine")
        self.model_step = _Step(grid, 1, "Model", "localDownload")
        self.start_step = _Step(grid, 2, "Start", "localStart")
        self.steps_box.hide()
        self.status = QLabel(objectName="localModelStatus", wordWrap=True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.hide()

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.about)
        layout.addWidget(self.how)
        layout.addLayout(buttons)
        layout.addWidget(self.steps_box)
        layout.addWidget(self.status)

        self.start_button.clicked.connect(self._on_start_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        follow(self, engines.add_listener, self._on_engine_progress)
        follow(self, downloads.add_listener, self._on_download_progress)

    # --- slots -------------------------------------------------------------------------------------

    def _on_start_clicked(self) -> None:
        self._running = self._tasks.spawn(self.run())

    def _on_cancel_clicked(self) -> None:
        self._tasks.spawn(self.cancel())

    def _on_engine_progress(self, progress: PullProgress) -> None:
        if progress.model != self._engine_job or progress.state is not PullState.RUNNING:
            return
        if progress.status == "unpacking":
            self.engine_step.busy(self.engine_step.text.text(), "Unpacking and checking…")
        else:
            self.engine_step.bytes(progress.completed, progress.total)

    def _on_download_progress(self, progress: PullProgress) -> None:
        if progress.model != self._download_key:
            return
        if progress.state is PullState.RETRYING:  # a cut: the download resumes by itself
            self.model_step.bar.setFormat(f"Connection lost: again in {progress.retry_in_s or 0:g} s")
        elif progress.state is PullState.RUNNING:
            self.model_step.bytes(progress.completed, progress.total)

    # --- the work ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._in_run

    async def run(self) -> InPicker | None:
        """Engine, model, server; the account and model in the chat's picker (`ready`), or None."""
        if self._in_run:
            return None
        self._in_run = True
        if self._running is None or self._running.done():
            self._running = asyncio.current_task()
        self.start_button.setEnabled(False)
        self.running_changed.emit(True)
        self.cancel_button.show()
        self.steps_box.show()
        self._say("", None)
        self.engine_step.waiting("llama.cpp, unless a llama-server is here")
        self.model_step.waiting(f"{self.model.file}, {self.model.size_text}", "Waiting")
        self.start_step.waiting("llama-server with the model, then the chat", "Waiting")
        try:
            await self._ensure_engine()
            path = await self._ensure_model()
            self.result = await self._start(path)
        except _Stopped as stopped:
            for step in (self.model_step, self.start_step):  # the steps after it do not wait any more
                if step.bar.format() == "Waiting":
                    step.bar.setFormat("")
            if stopped.error is None:
                self._say("Cancelled. What was downloaded is kept: the next try goes on from there.", None)
            else:
                self._say(f"{stopped.error.message} {stopped.error.action}".strip(), "error")
            self.start_button.setText("Retry")
            return None
        finally:
            self.start_button.setEnabled(True)
            self.cancel_button.hide()
            self._engine_job = self._download_key = ""
            self._in_run = False
            self.running_changed.emit(False)
        self.start_step.done(f"{self.model.name} is running on this computer.", "Running")
        self._say(f"{self.model.name} is ready: the chat is open with it picked.", "ok")
        self.start_button.hide()
        model = self.result.models[0] if self.result.models else Path(self.model.file).stem
        log.info("first run: %s is ready in the chat", model)  # the e2e test waits for this line
        self.ready.emit(self.result.account.id, model)
        return self.result

    async def cancel(self) -> None:
        """Stop the step under way: an install or download keeps what it fetched, a start is stopped."""
        if self._engine_job:
            await self._engines.cancel(self._engine_job, keep_partial=True)
        elif self._download_key:
            await self._downloads.cancel(self._download_key, keep_partial=True)
        elif self._in_run and self._running is not None and self._running is not asyncio.current_task():
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
            self.start_step.waiting("Stopped.")
            self._say("Cancelled.", None)
            self.start_button.setText("Retry")

    async def aclose(self) -> None:
        """Quitting: the step under way stops (a download stays resumable); no widget is touched
        unless a run is under way (the dialog is open then)."""
        if self._engine_job:
            await self._engines.cancel(self._engine_job, keep_partial=True)
        elif self._download_key:
            await self._downloads.cancel(self._download_key, keep_partial=True)
        await self._tasks.aclose()

    # --- the steps ---------------------------------------------------------------------------------

    async def _ensure_engine(self) -> None:
        step = self.engine_step
        step.busy("Looking for a llama-server on this computer…", "Looking…")
        in_use = await self._engines.in_use(self._binary_setting(), self._path)
        if in_use is not None:
            version = f" ({in_use.version.text.split(',')[0]})" if in_use.version is not None else ""
            what = f"llama.cpp {in_use.tag}" if in_use.tag else f"llama-server{version}"
            step.done(f"{what} is installed already.", "Ready")
            log.info("first run: the engine in use is %s", in_use.path)
            return
        step.busy("Reading the latest llama.cpp release…", "Looking…")
        try:
            release = await self._engines.latest()
            build, _others = pick_build(release, await self._platform())
        except EngineError as exc:
            step.waiting("No engine installed.")
            raise _Stopped(exc) from None
        step.waiting(f"llama.cpp {release.tag}, {build.label}, {size_text(build.size)}")
        self._engine_job = build.asset.name
        final = await self._engines.start(build, release.tag).wait()
        self._engine_job = ""
        if final.state is PullState.DONE:
            step.done(f"llama.cpp {release.tag} ({build.label}) is installed and ran.", size_text(build.size))
            return
        step.waiting("No engine installed.")
        raise _Stopped(final.error if final.state is PullState.FAILED else None)

    async def _ensure_model(self) -> Path:
        step, model = self.model_step, self.model
        if (found := await self._downloads.cached(model.repo, model.file)) is not None:
            step.done(f"{model.file} is downloaded already.", model.size_text)
            return found
        step.busy(f"Reading {model.repo} on Hugging Face…", "Looking…")
        try:
            repo = await self._hub.repo(model.repo)
            quant = next((q for q in await self._hub.quant_files(model.repo, repo.sha) if q.name == model.file), None)
        except DomainError as exc:
            step.waiting("Not downloaded.")
            raise _Stopped(exc) from None
        if quant is None:
            step.waiting("Not downloaded.")
            raise _Stopped(HubNotFound(f"“{model.file}” is no longer in {model.repo} on Hugging Face.", ""))
        step.waiting(f"{model.file}, {size_text(quant.size)}")
        request = DownloadRequest(model.repo, quant, repo.sha)
        self._download_key = request.key
        final = await self._downloads.start(request).wait()
        self._download_key = ""
        found = await self._downloads.cached(model.repo, model.file) if final.state is PullState.DONE else None
        if found is not None:
            step.done(f"{model.file} is downloaded and checked.", size_text(quant.size))
            return found
        step.waiting("Not downloaded.")
        raise _Stopped(final.error if final.state is PullState.FAILED else None)

    async def _start(self, path: Path) -> InPicker:
        self.start_step.busy(f"Starting llama-server with {path.name}…", "Starting…")
        try:
            return await self._serve(path, STARTER_CONTEXT)
        except DomainError as exc:
            self.start_step.waiting("Not running.")
            raise _Stopped(exc) from None

    def _say(self, text: str, tone: str | None) -> None:
        self.status.setText(text)
        set_tone(self.status, tone)
        self.status.setVisible(bool(text))
