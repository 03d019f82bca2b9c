"""Help: the keyboard shortcuts, About ModelDesk, debug logging and the diagnostics report.

`SHORTCUTS` is the one list of the app's shortcuts: the dialog shows it, and `HelpMenu` installs
the window-wide ones it names (F1, Ctrl+N, Ctrl+1..3); the chat pane and File > Quit own theirs.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app import __version__
from desktop_app.services.log_control import debug_enabled, set_debug
from desktop_app.services.paths import AppPaths

PROJECT_URL = "https://github.com/modeldesk/modeldesk"


@dataclass(frozen=True, slots=True)
class Shortcut:
    keys: tuple[str, ...]  # portable QKeySequence strings, shown in the platform's own notation
    action: str
    where: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(("Ctrl+Return",), "Send the message", "Chat"),
    Shortcut(("Esc",), "Stop the reply being written", "Chat"),
    Shortcut(("Ctrl+N",), "New chat", "Anywhere"),
    Shortcut(("Ctrl+1", "Ctrl+2", "Ctrl+3"), "Show Chat, Accounts or Usage", "Anywhere"),
    Shortcut(("Alt+Up", "Alt+Down"), "Move the selected account up or down", "Accounts"),
    Shortcut(("F1",), "Show these shortcuts", "Anywhere"),
    Shortcut(("Ctrl+Q",), "Quit", "Anywhere"),
)


def pane_shortcut(pane_titles: Sequence[str]) -> Shortcut:
    """The Ctrl+<n> row for the panes the window really has (HelpMenu installs the same keys)."""
    titles = list(pane_titles[:9])
    names = titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} or {titles[-1]}"
    return Shortcut(tuple(f"Ctrl+{n}" for n in range(1, len(titles) + 1)), f"Show {names}", "Anywhere")


def shortcut_text(keys: Sequence[str]) -> str:
    """ "Ctrl+Enter", or "⌘↩" on macOS: each sequence in the platform's notation."""
    texts = []
    for key in keys:
        text = QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)
        # Qt calls the main Enter key "Return"; people call it Enter.
        texts.append(text.replace("Return", "Enter"))
    return " / ".join(texts)


def _read_only_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, object_name: str) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers), objectName=object_name)
    table.setHorizontalHeaderLabels(list(headers))
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            item = QTableWidgetItem(value)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            table.setItem(row, column, item)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    # A list to read, not to work in: no focus frame, no selection.
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    table.resizeRowsToContents()
    # Tall enough for every row: these tables are short and scrolling them helps nobody.
    height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    height += sum(table.rowHeight(row) for row in range(table.rowCount()))
    table.setMinimumHeight(height)
    table.setMaximumHeight(height)
    return table


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, *, pane_titles: Sequence[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setObjectName("shortcutsDialog")
        shortcuts = list(SHORTCUTS)
        if pane_titles:
            index = next(i for i, s in enumerate(shortcuts) if s.keys[0] == "Ctrl+1")
            shortcuts[index] = pane_shortcut(pane_titles)
        rows = [(shortcut_text(s.keys), s.action, s.where) for s in shortcuts]
        self.table = _read_only_table(("Keys", "Does", "Where"), rows, object_name="shortcutsTable")
        buttons = _close_buttons(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def texts(self) -> list[str]:
        return [
            self.table.item(r, c).text() for r in range(self.table.rowCount()) for c in range(self.table.columnCount())
        ]


# --- About -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    distributions: tuple[str, ...]  # the first one installed is read
    # Shown only when the installed metadata does not say (a stripped bundle, say).
    expected_licence: str


COMPONENTS: tuple[Component, ...] = (
    Component("Qt and PySide6", ("PySide6-Essentials", "PySide6"), "LGPL-3.0-only"),
    Component("Shiboken6", ("shiboken6",), "LGPL-3.0-only"),
    Component("LiteLLM", ("litellm",), "MIT"),
    Component("qasync", ("qasync",), "BSD-2-Clause"),
    Component("httpx", ("httpx",), "BSD-3-Clause"),
    Component("keyring", ("keyring",), "MIT"),
    Component("platformdirs", ("platformdirs",), "MIT"),
    Component("pydantic", ("pydantic",), "MIT"),
    Component("markdown-it-py", ("markdown-it-py",), "MIT"),
    Component("Pygments", ("Pygments",), "BSD-2-Clause"),
    Component("ollama (Python client)", ("ollama",), "MIT"),
)

_CLASSIFIER_LICENCES = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
}


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    name: str
    version: str
    licence: str
    from_metadata: bool


def component_info(component: Component) -> ComponentInfo:
    """Version and licence as the installed package's metadata states them."""
    for dist_name in component.distributions:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        licence = _licence_from_metadata(dist)
        return ComponentInfo(
            component.name, dist.version or "?", licence or component.expected_licence, from_metadata=bool(licence)
        )
    return ComponentInfo(component.name, "not installed", component.expected_licence, from_metadata=False)


def _licence_from_metadata(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 80:
        return field
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License :: OSI Approved :: "):
            name = classifier.rsplit(" :: ", 1)[1]
            return _CLASSIFIER_LICENCES.get(name, name)
    for licence_file in meta.get_all("License-File") or []:
        for path in (licence_file, f"licenses/{licence_file}"):
            text = dist.read_text(path)
            if text and text.strip():
                first = text.strip().splitlines()[0].strip()
                if "licen" in first.lower() and len(first) <= 60:
                    return (
                        first.removesuffix(" License").removesuffix(" license")
                        if first.startswith(("MIT", "BSD", "Apache"))
                        else first
                    )
    return ""


def _folder_link(path) -> str:
    url = QUrl.fromLocalFile(str(path)).toString()
    return f'<a href="{html.escape(url)}">{html.escape(str(path))}</a>'


class AboutDialog(QDialog):
    def __init__(self, *, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtCore import qVersion

        from desktop_app.ui.theme import app_icon

        self.setWindowTitle("About ModelDesk")
        self.setObjectName("aboutDialog")

        icon_label = QLabel(objectName="aboutIcon")
        icon = app_icon()
        if not icon.isNull():
            icon_label.setPixmap(icon.pixmap(64, 64))
        self.title_label = QLabel(f"ModelDesk {__version__}", objectName="aboutTitle")
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title_label.setFont(font)
        self.versions_label = QLabel(
            f"Python {platform.python_version()} · Qt {qVersion()} · PySide6 {component_info(COMPONENTS[0]).version}",
            objectName="aboutVersions",
        )
        self.summary_label = QLabel(
            "Manage local and cloud language models from one desktop window. "
            f'MIT licence. <a href="{PROJECT_URL}">{PROJECT_URL.removeprefix("https://")}</a>',
            objectName="aboutSummary",
            wordWrap=True,
            openExternalLinks=True,
        )
        heading = QVBoxLayout()
        heading.setSpacing(2)
        heading.addWidget(self.title_label)
        heading.addWidget(self.versions_label)
        heading.addWidget(self.summary_label)
        top = QHBoxLayout()
        top.addWidget(icon_label, 0, Qt.AlignmentFlag.AlignTop)
        top.addSpacing(8)
        top.addLayout(heading, 1)

        self.components = [component_info(c) for c in COMPONENTS]
        rows = [
            (c.name, c.version, c.licence if c.from_metadata else f"{c.licence} (not in metadata)")
            for c in self.components
        ]
        self.components_table = _read_only_table(
            ("Component", "Version", "Licence"), rows, object_name="componentsTable"
        )
        self.lgpl_label = QLabel(
            "Qt and PySide6 are used under the GNU LGPL v3 and can be replaced with your own build; their "
            'source is at <a href="https://code.qt.io">code.qt.io</a>. Each component keeps its own '
            "licence, as do the libraries they use.",
            objectName="aboutLgpl",
            wordWrap=True,
            openExternalLinks=True,
        )

        self.paths = paths
        folders = QFormLayout()
        folders.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.folder_labels: dict[str, QLabel] = {}
        for key, title, path in (
            ("config", "Settings", paths.config_dir),
            ("data", "Conversations and usage", paths.data_dir),
            ("cache", "Cache", paths.cache_dir),
            ("logs", "Logs", paths.log_dir),
        ):
            label = QLabel(_folder_link(path), objectName=f"aboutPath_{key}", openExternalLinks=True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
            label.setToolTip(f"Open {path}")
            self.folder_labels[key] = label
            folders.addRow(f"{title}:", label)

        buttons = _close_buttons(self)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addLayout(top)
        layout.addWidget(_section("Built with"))
        layout.addWidget(self.components_table)
        layout.addWidget(self.lgpl_label)
        layout.addWidget(_section("Where ModelDesk keeps its files"))
        layout.addLayout(folders)
        layout.addWidget(buttons)
        self.setMinimumWidth(600)

    def texts(self) -> list[str]:
        texts = [label.text() for label in self.findChildren(QLabel)]
        texts += [
            self.components_table.item(r, c).text()
            for r in range(self.components_table.rowCount())
            for c in range(self.components_table.columnCount())
        ]
        return texts


def _close_buttons(dialog: QDialog) -> QDialogButtonBox:
    # A plain "Close": the style's stock icon for it is drawn dark on dark in the dark theme.
    buttons = QDialogButtonBox()
    close = QPushButton("Close", objectName="closeButton", default=True)
    buttons.addButton(close, QDialogButtonBox.ButtonRole.RejectRole)
    buttons.rejected.connect(dialog.reject)
    return buttons


def _section(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


# --- the Help menu ------------------------------------------------------------------------------


class HelpMenu(QObject):
    """Adds Help (shortcuts, debug logging, copy diagnostics, about) and the window-wide shortcuts.

    Takes callables, not services: `diagnostics()` returns the report text, `show_pane(title)`
    switches panes, `new_chat()` starts a conversation.
    """

    diagnostics_copied = Signal()

    def __init__(
        self,
        window: QMainWindow,
        *,
        paths: AppPaths,
        diagnostics: Callable[[], str],
        show_pane: Callable[[str], None],
        pane_titles: Sequence[str],
        new_chat: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._paths = paths
        self._diagnostics = diagnostics
        self._pane_titles = list(pane_titles)
        self.dialog: QDialog | None = None

        menu = window.menuBar().addMenu("&Help")
        self.shortcuts_action = menu.addAction("Keyboard shortcuts")
        self.shortcuts_action.setShortcut(QKeySequence("F1"))
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        menu.addSeparator()
        self.debug_action = menu.addAction("Debug logging")
        self.debug_action.setCheckable(True)
        self.debug_action.setChecked(debug_enabled())
        self.debug_action.setToolTip("Write details to the log file while you reproduce a problem (never keys)")
        self.debug_action.toggled.connect(set_debug)
        self.copy_diagnostics_action = menu.addAction("Copy diagnostics")
        self.copy_diagnostics_action.setToolTip("Versions, settings and recent errors for a bug report; no keys")
        self.copy_diagnostics_action.triggered.connect(self.copy_diagnostics)
        menu.addSeparator()
        self.about_action = menu.addAction("About ModelDesk")
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)

        self.pane_actions: list[QAction] = []
        for number, title in enumerate(pane_titles[:9], start=1):
            action = QAction(f"Show {title}", window, shortcut=QKeySequence(f"Ctrl+{number}"))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _checked=False, t=title: show_pane(t))
            window.addAction(action)
            self.pane_actions.append(action)
        self.new_chat_action: QAction | None = None
        if new_chat is not None:
            self.new_chat_action = QAction("New chat", window, shortcut=QKeySequence("Ctrl+N"))
            self.new_chat_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.new_chat_action.triggered.connect(lambda _checked=False: new_chat())
            window.addAction(self.new_chat_action)

    def show_shortcuts(self) -> ShortcutsDialog:
        return self._open(ShortcutsDialog(self._window, pane_titles=self._pane_titles))

    def show_about(self) -> AboutDialog:
        return self._open(AboutDialog(paths=self._paths, parent=self._window))

    def copy_diagnostics(self) -> str:
        text = self._diagnostics()
        QGuiApplication.clipboard().setText(text)
        self._window.statusBar().showMessage("Diagnostics copied to the clipboard (they contain no keys).", 8000)
        self.diagnostics_copied.emit()
        return text

    def _open(self, dialog):
        if self.dialog is not None:
            self.dialog.close()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._forget(dialog))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _forget(self, dialog: QDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
