"""The llama.cpp pane's "Local engine" box: the llama-server in use, and installing or updating llama.cpp.

It says which llama-server the app would run (the configured path, one on PATH, or one it
installed) with its build, or that there is none. Nothing goes to the network until the user
clicks: "Install llama.cpp…" / "Check for updates" reads the latest release, lists its builds for
this machine (the recommended one first) with their sizes, and "Install" downloads, checks and
unpacks the chosen one (`EngineInstaller`), with progress and Cancel (a cancelled download resumes).
Where the release has no build for this machine and CMake and a compiler are there, "Build from
source" builds it (`SourceBuilder`), its log streaming below, with Cancel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.engine import (
    Build,
    EngineError,
    EngineInUse,
    NoBuildForPlatform,
    Platform,
    Release,
    pick_build,
    size_text,
)
from desktop_app.domain.errors import DomainError
from desktop_app.domain.ollama import PullProgress, PullState
from desktop_app.services.local.llamacpp_build import SourceBuilder, build_tools
from desktop_app.services.local.llamacpp_install import EngineInstaller, detect_platform
from desktop_app.ui.common.events import follow
from desktop_app.ui.common.tasks import TaskOwner
from desktop_app.ui.llamacpp.widgets import status_label
from desktop_app.ui.theme import set_tone

NO_ENGINE = "No llama-server found: install llama.cpp here, or set the path of one below."
SOURCES = {"setting": "the path set below", "path": "found on PATH", "installed": "installed by ModelDesk"}


def _say(exc: DomainError) -> str:
    return f"{exc.message} {exc.action}".strip()


def describe(engine: EngineInUse | None) -> str:
    if engine is None:
        return NO_ENGINE
    version = engine.version.text if engine.version is not None else "its version could not be read"
    tag = f" {engine.tag}" if engine.tag else ""
    return f"llama-server{tag} ({SOURCES.get(engine.source, engine.source)}): {version}.\n{engine.path}"


class EngineBox(QGroupBox):
    """The engine in use, and the install/update controls; the work is in async methods tests await."""

    def __init__(
        self,
        *,
        engines: EngineInstaller,
        binary_setting: Callable[[], str] = lambda: "",
        platform: Callable[[], Awaitable[Platform]] = detect_platform,
        path: str | None = None,  # PATH to look on (None: the process's), for tests
        builder: SourceBuilder | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Local engine", parent, objectName="engineBox")
        self._engines, self._binary_setting, self._platform, self._path = engines, binary_setting, platform, path
        self._tasks = TaskOwner("EngineBox")
        self._release: Release | None = None
        self._installing = ""  # the asset name being installed
        self._builder = builder if builder is not None else SourceBuilder(engines.client, engines)
        self._building: asyncio.Task[object] | None = None
        self.in_use: EngineInUse | None = None
        self.engine_label = QLabel(NO_ENGINE, objectName="engineInUse", wordWrap=True)
        self.check_button = QPushButton("Install llama.cpp…", objectName="checkEngine")
        self.check_button.setToolTip(
            "Read the latest llama.cpp release from GitHub and list its builds for this machine"
        )
        self.builds_combo = QComboBox(objectName="engineBuilds")
        self.builds_combo.setAccessibleName("llama.cpp build")
        self.install_button = QPushButton("Install", objectName="installEngine")
        self.cancel_button = QPushButton("Cancel", objectName="cancelEngine")
        self.build_button = QPushButton("Build from source", objectName="buildEngine")
        self.build_button.setToolTip("Build llama-server from this release's source with CMake (takes a while)")
        self.build_log = QPlainTextEdit(objectName="engineBuildLog", readOnly=True, maximumBlockCount=2000)
        self.progress = QProgressBar(objectName="engineProgress", textVisible=True)
        self.status = status_label("engineStatus")
        for widget in (
            self.builds_combo,
            self.install_button,
            self.cancel_button,
            self.progress,
            self.build_button,
            self.build_log,
        ):
            widget.hide()
        row = QHBoxLayout()
        row.addWidget(self.builds_combo, 1)
        row.addWidget(self.install_button)
        row.addWidget(self.build_button)
        row.addWidget(self.cancel_button)
        row.addStretch()  # the buttons keep their size while the list of builds is hidden
        top = QHBoxLayout()
        top.addWidget(self.engine_label, 1)
        top.addWidget(self.check_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.build_log, 1)
        layout.addWidget(self.status)
        self.check_button.clicked.connect(self._on_check_clicked)
        self.install_button.clicked.connect(self._on_install_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.build_button.clicked.connect(self._on_build_clicked)
        follow(self, engines.add_listener, self._on_progress)
        follow(self, self._builder.add_log_listener, self._on_build_line)

    # --- slots -------------------------------------------------------------------------------------

    def _on_check_clicked(self) -> None:
        self._tasks.spawn(self.check())

    def _on_install_clicked(self) -> None:
        self._tasks.spawn(self.install())

    def _on_cancel_clicked(self) -> None:
        self._tasks.spawn(self.cancel())

    def _on_build_clicked(self) -> None:
        self._building = self._tasks.spawn(self.build())

    def _on_build_line(self, line: str) -> None:
        self.build_log.appendPlainText(line)

    def _on_progress(self, progress: PullProgress) -> None:
        if progress.model != self._installing:
            return
        if progress.status == "unpacking":
            self.progress.setRange(0, 0)  # busy: unpacking and running --version
            self.progress.setFormat("Unpacking and checking…")
        elif progress.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(progress.fraction * 1000))
            self.progress.setFormat(f"{size_text(progress.completed)} of {size_text(progress.total)}")

    # --- the work ------------------------------------------------------------------------------------

    async def refresh(self) -> EngineInUse | None:
        """Say which llama-server is in use (runs its --version; no network)."""
        self.in_use = await self._engines.in_use(self._binary_setting(), self._path)
        self.engine_label.setText(describe(self.in_use))
        installed = self.in_use is not None and self.in_use.source == "installed"
        self.check_button.setText("Check for updates" if installed else "Install llama.cpp…")
        return self.in_use

    async def check(self) -> Release | None:
        """Read the latest release and list its builds for this machine (the recommended one first)."""
        self.check_button.setEnabled(False)
        self._say("Reading the latest llama.cpp release…", "busy")
        try:
            release = await self._engines.latest()
            self._release = release
            best, others = pick_build(release, await self._platform())
        except NoBuildForPlatform as exc:
            tools = build_tools(self._path)
            self.build_button.setVisible(tools is not None)
            self._say(_say(exc) if tools is None else f"{exc.message} It can be built from source here.", "warning")
            return None
        except EngineError as exc:
            self._say(_say(exc), "error")
            return None
        finally:
            self.check_button.setEnabled(True)
        installed = self._engines.current()
        if installed is not None and installed.number >= release.number:
            self._say(f"llama.cpp {installed.tag} is the latest release.", "ok")
            return release
        self.builds_combo.clear()
        for number, build in enumerate([best, *others]):
            recommended = " — recommended" if number == 0 else ""
            self.builds_combo.addItem(f"{build.label}, {size_text(build.size)}{recommended}", build)
        self.builds_combo.show()
        self.install_button.setText(f"Install {release.tag}")
        self.install_button.show()
        newer = f"llama.cpp {release.tag} is out (this one is {installed.tag})." if installed else ""
        self._say(newer or f"llama.cpp {release.tag}: pick a build and install it.", None)
        return release

    async def install(self) -> PullProgress | None:
        build = self.builds_combo.currentData()
        if self._release is None or not isinstance(build, Build):
            return None
        self._installing = build.asset.name
        self.install_button.setEnabled(False)
        self.builds_combo.setEnabled(False)
        self.cancel_button.show()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.show()
        self._say(f"Downloading {build.asset.name}…", "busy")
        try:
            final = await self._engines.start(build, self._release.tag).wait()
        finally:
            self.install_button.setEnabled(True)
            self.builds_combo.setEnabled(True)
            self.cancel_button.hide()
            self.progress.hide()
        if final.state is PullState.DONE:
            self.builds_combo.hide()
            self.install_button.hide()
            self._say(f"llama.cpp {self._release.tag} is installed and ran.", "ok")
            await self.refresh()
        elif final.state is PullState.CANCELLED:
            self._say("Install cancelled: install again to resume the download.", None)
        elif final.error is not None:
            self._say(_say(final.error), "error")
        return final

    async def build(self) -> bool:
        """Build the release's llama-server from source; True once it is installed and ran."""
        if self._release is None:
            return False
        self.build_button.setEnabled(False)
        self.build_log.clear()
        self.build_log.show()
        self.cancel_button.show()
        self._say(f"Building llama.cpp {self._release.tag} from source…", "busy")
        try:
            await self._builder.build(self._release)
        except asyncio.CancelledError:
            self._say("Build cancelled.", None)
            raise
        except EngineError as exc:
            self._say(_say(exc), "error")
            return False
        finally:
            self.build_button.setEnabled(True)
            self.cancel_button.hide()
        self.build_button.hide()
        self._say(f"llama.cpp {self._release.tag} is built, installed and ran.", "ok")
        await self.refresh()
        return True

    async def cancel(self) -> None:
        if self._building is not None and not self._building.done():
            self._building.cancel()
            await asyncio.gather(self._building, return_exceptions=True)
        elif self._installing:
            await self._engines.cancel(self._installing, keep_partial=True)

    async def aclose(self) -> None:
        await self._tasks.aclose()

    def _say(self, text: str, tone: str | None) -> None:
        self.status.setText(text)
        set_tone(self.status, tone)
        self.status.setVisible(bool(text))
