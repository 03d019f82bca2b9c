"""The main window: a navigation list on the left, one pane at a time on the right."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app import __version__
from desktop_app.ui.theme import banner_style, set_themed_style_sheet


class _FirstPaintWatcher(QObject):
    def __init__(self, callback) -> None:
        super().__init__()
        self._callback = callback
        self._seen = False

    def eventFilter(self, watched, event) -> bool:
        if not self._seen and event.type() == QEvent.Type.Paint:
            self._seen = True
            self._callback()
        return False


class MainWindow(QMainWindow):
    first_painted = Signal()
    closing = Signal()
    export_proxy_requested = Signal(str)  # a path chosen by the user

    def __init__(self, *, panes: list[tuple[str, QWidget]] = (), parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("ModelDesk")
        self.resize(1280, 800)
        self.nav = QListWidget()
        self.nav.setFixedWidth(120)
        self.nav.setObjectName("navigation")
        self.nav.setStyleSheet(
            "QListWidget#navigation { border: none; background: palette(window); font-size: 11pt; }"
            "QListWidget#navigation::item { padding: 10px 12px; border-radius: 6px; margin: 2px 4px; }"
            "QListWidget#navigation::item:selected { background: palette(highlight);"
            " color: palette(highlighted-text); }"
        )
        self.stack = QStackedWidget()
        self._panes: dict[str, QWidget] = {}
        self._builders: dict[str, Callable[[], QWidget]] = {}  # panes not built yet, by title
        self.nav.currentRowChanged.connect(self._on_nav_row_changed)
        for title, pane in panes:
            self.add_pane(title, pane)

        self.banner = QLabel()
        self.banner.setObjectName("startupBanner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        set_themed_style_sheet(self.banner, banner_style("QLabel#startupBanner", padding="6px"))

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.banner)
        right.addWidget(self.stack, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.nav)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage(f"ModelDesk {__version__}")
        self.nav.setCurrentRow(0)

        file_menu = self.menuBar().addMenu("&File")
        self.export_proxy_action = file_menu.addAction("Export as LiteLLM Proxy config…")
        self.export_proxy_action.triggered.connect(self._on_export_proxy)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit")
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)

        self._paint_watcher = _FirstPaintWatcher(self.first_painted.emit)
        central.installEventFilter(self._paint_watcher)

    def _on_export_proxy(self) -> None:
        dialog = QFileDialog(self, "Export LiteLLM Proxy config", "config.yaml", "YAML files (*.yaml *.yml)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.fileSelected.connect(self.export_proxy_requested)
        dialog.open()

    def add_pane(self, title: str, pane: QWidget | Callable[[], QWidget]) -> None:
        """Panes are added once the window exists, so it can paint before they are built.

        A callable is the pane's builder: it runs when the pane is first shown or asked for (`pane()`).
        """
        self.nav.addItem(title)
        if isinstance(pane, QWidget):
            self._panes[title] = pane
        else:
            self._builders[title] = pane
            pane = QWidget()  # holds the pane's place in the stack until it is built
        self.stack.addWidget(pane)
        if self.nav.currentRow() < 0:
            self.nav.setCurrentRow(0)

    def pane(self, title: str) -> QWidget:
        """The pane called `title`, built now if it has not been shown yet."""
        if title in self._builders:
            row = self.nav.row(self.nav.findItems(title, Qt.MatchFlag.MatchExactly)[0])
            placeholder = self.stack.widget(row)
            self._panes[title] = built = self._builders[title]()
            del self._builders[title]
            self.stack.insertWidget(row, built)
            self.stack.removeWidget(placeholder)
            placeholder.deleteLater()
        return self._panes[title]

    def built_pane(self, title: str) -> QWidget | None:
        """The pane called `title` if it has been built, without building it."""
        return self._panes.get(title)

    def _on_nav_row_changed(self, row: int) -> None:
        if row >= 0:
            self.pane(self.nav.item(row).text())  # built before it is shown, so it is shown as itself
        self.stack.setCurrentIndex(row)

    def show_pane(self, title: str) -> None:
        items = self.nav.findItems(title, Qt.MatchFlag.MatchExactly)
        if items:
            self.nav.setCurrentItem(items[0])

    def add_notice(self, text: str) -> None:
        """A start-up notice the user must see (settings moved aside, keys not persistent...)."""
        if not text:
            return
        existing = self.banner.text()
        self.banner.setText(f"{existing}\n{text}" if existing else text)
        self.banner.setVisible(True)

    def closeEvent(self, event) -> None:
        self.closing.emit()
        super().closeEvent(event)
