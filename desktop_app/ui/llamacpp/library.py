"""The GGUF library: every model file found on disk, what its header says, and what could not be read."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.gguf import GgufInfo, ScanResult
from desktop_app.services.local.gguf import GgufLibrary
from desktop_app.ui.common.tasks import TaskOwner

_Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("Name", "Architecture", "Parameters", "Quantisation", "Context", "Chat template", "Size", "Path")


def _params(count: int | None) -> str:
    if not count:
        return "—"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def _size(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


class GgufTableModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._infos: list[GgufInfo] = []

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._infos)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(COLUMNS)
        ):
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._infos):
            return None
        info, column = self._infos[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                info.name,
                info.architecture,
                _params(info.parameter_count),
                info.quantisation,
                f"{info.context_length:,}" if info.context_length else "—",
                "yes" if info.has_chat_template else "no",
                _size(info.size),
                str(info.path),
            )[column]
        if role == SORT_ROLE:
            return (
                info.name.lower(),
                info.architecture,
                info.parameter_count or 0,
                info.quantisation,
                info.context_length or 0,
                info.has_chat_template,
                float(info.size),
                str(info.path),
            )[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(info.path) + (f"\n{info.split_count} parts" if info.is_split else "")
        return None

    def set_infos(self, infos: list[GgufInfo]) -> None:
        self.beginResetModel()
        self._infos = list(infos)
        self.endResetModel()

    def info_at(self, row: int) -> GgufInfo | None:
        return self._infos[row] if 0 <= row < len(self._infos) else None


class GgufLibraryView(QWidget):
    scanned = Signal()
    folders_changed = Signal(list)  # the user's own folders, as strings, to be saved

    def __init__(self, *, library: GgufLibrary, user_folders: list[str] = (), parent=None) -> None:
        super().__init__(parent)
        self._library = library
        self._user_folders = list(user_folders)
        self._tasks = TaskOwner("gguf")
        self.result = ScanResult((), ())
        self.model = GgufTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.filter_edit = QLineEdit(placeholderText="Filter by name, architecture, quantisation…")
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.add_button = QPushButton("Add folder…")
        self.rescan_button = QPushButton("Rescan")
        self.summary = QLabel()
        self.folders_label = QLabel(wordWrap=True)
        self.folders_label.setStyleSheet("color: palette(placeholder-text);")
        self.problems = QListWidget()
        self.problems.setMaximumHeight(110)
        self.problems_label = QLabel("Files that could not be read")

        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.add_button)
        top.addWidget(self.rescan_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.problems)
        layout.addWidget(self.folders_label)
        self.add_button.clicked.connect(self._on_add_clicked)
        self.rescan_button.clicked.connect(lambda: self._tasks.spawn(self.scan()))
        self._show_folders()
        self._show_result()

    def _show_folders(self) -> None:
        self.folders_label.setText("Looking in: " + " · ".join(str(f) for f in self._library.folders))

    def _show_result(self) -> None:
        infos, problems = self.result.infos, self.result.problems
        self.model.set_infos(list(infos))
        self.problems.clear()
        for problem in problems:
            self.problems.addItem(f"{problem.path.name}: {problem.reason}")
        self.problems.setVisible(bool(problems))
        self.problems_label.setVisible(bool(problems))
        if infos or problems:
            self.summary.setText(
                f"{len(infos)} model file{'s' if len(infos) != 1 else ''} found"
                + (f", {len(problems)} unreadable." if problems else ".")
            )
        else:
            self.summary.setText("No GGUF files found yet: add a folder that holds .gguf models.")

    @property
    def files(self) -> list:
        return [info.path for info in self.result.infos]

    async def scan(self) -> ScanResult:
        self.rescan_button.setEnabled(False)
        self.summary.setText("Scanning…")
        try:
            self.result = await self._library.scan()
        finally:
            self.rescan_button.setEnabled(True)
        self._show_result()
        self.scanned.emit()
        return self.result

    async def add_folder(self, folder: str) -> None:
        from pathlib import Path

        if self._library.add_folder(Path(folder)) and folder not in self._user_folders:
            self._user_folders.append(folder)
            self.folders_changed.emit(list(self._user_folders))
        self._show_folders()
        await self.scan()

    def _on_add_clicked(self) -> None:
        dialog = QFileDialog(self, "Add a folder of GGUF models")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self._tasks.spawn(self.add_folder(path)))
        dialog.open()

    async def aclose(self) -> None:
        await self._tasks.aclose()
