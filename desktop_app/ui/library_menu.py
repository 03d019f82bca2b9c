"""File > Export conversations and Import conversations, and the conversation list's Export…:
the file dialogs, and the outcome said in the status bar. The work runs as the library's async
methods (the database on its worker, the file on a thread), never on the GUI thread."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu

from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.library import ExportFormat, ImportRefused
from desktop_app.services.chat.library import ConversationLibrary

if TYPE_CHECKING:
    from desktop_app.ui.chat.pane import ChatPane
    from desktop_app.ui.main_window import MainWindow

_FILTERS = {
    "ModelDesk JSON, every branch and file (*.json)": ExportFormat.JSON,
    "Markdown, the branch shown (*.md)": ExportFormat.MARKDOWN,
}
_IMPORT_FILTERS = "Conversations: ModelDesk JSON, OpenAI chat messages (*.json *.jsonl);;All files (*)"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


def _file_name(title: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', " ", title).strip()[:60] or "conversation"


class LibraryMenu:
    def __init__(
        self,
        window: MainWindow,
        *,
        library: ConversationLibrary,
        chat_pane: ChatPane,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self._window = window
        self._library = library
        self._chat_pane = chat_pane
        self._spawn = spawn
        file_menu = window.export_proxy_action.parent()
        assert isinstance(file_menu, QMenu)
        before = window.export_proxy_action
        self.export_menu = QMenu("Export conversations", file_menu)
        self.export_current_action = self.export_menu.addAction("The open conversation…")
        self.export_current_action.triggered.connect(self._on_export_current)
        self.export_all_action = self.export_menu.addAction("All conversations…")
        self.export_all_action.triggered.connect(lambda: self.ask_export_path(None, "conversations"))
        file_menu.insertMenu(before, self.export_menu)
        self.import_action = QAction("Import conversations…", file_menu)
        self.import_action.triggered.connect(self._on_import)
        file_menu.insertAction(before, self.import_action)
        file_menu.insertSeparator(before)
        chat_pane.conversations_box.export_requested.connect(self._on_list_export_requested)

    def _say(self, text: str) -> None:
        self._window.statusBar().showMessage(text)

    def _on_export_current(self) -> None:
        current = self._chat_pane.current_conversation
        if current is None:
            self._say("Open a conversation to export it, or export all of them.")
            return
        self.ask_export_path([current.id], _file_name(current.title))

    def _on_list_export_requested(self, ids: list[int]) -> None:
        current = self._chat_pane.current_conversation
        name = _file_name(current.title) if current is not None and ids == [current.id] else "conversations"
        self.ask_export_path(ids, name)

    def ask_export_path(self, ids: Sequence[int] | None, name: str) -> QFileDialog:
        """The save dialog; its file type picks the format (a typed .md or .json suffix wins)."""
        start = str(Path.home() / f"{name}.json")
        dialog = QFileDialog(self._window, "Export conversations", start, ";;".join(_FILTERS))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setDefaultSuffix("json")
        dialog.filterSelected.connect(lambda f: dialog.setDefaultSuffix(_FILTERS[f].suffix[1:]))
        dialog.fileSelected.connect(
            lambda path: self._spawn(self.export_to(Path(path), self._format(path, dialog.selectedNameFilter()), ids))
        )
        dialog.open()
        return dialog

    @staticmethod
    def _format(path: str, name_filter: str) -> ExportFormat:
        suffix = Path(path).suffix.lower()
        if suffix in (".md", ".markdown"):
            return ExportFormat.MARKDOWN
        if suffix == ".json":
            return ExportFormat.JSON
        return _FILTERS.get(name_filter, ExportFormat.JSON)

    async def export_to(self, path: Path, fmt: ExportFormat, ids: Sequence[int] | None) -> None:
        self._say(f"Exporting to {path}…")
        try:
            count = await self._library.export(path, fmt, ids)
        except OSError as exc:
            self._say(f"Could not write {path}: {exc.strerror or type(exc).__name__}.")
            return
        except StorageFailed as exc:
            self._say(str(exc))
            return
        self._say(f"Exported {_count(count, 'conversation')} to {path}.")

    def _on_import(self) -> None:
        dialog = QFileDialog(self._window, "Import conversations", str(Path.home()), _IMPORT_FILTERS)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.fileSelected.connect(lambda path: self._spawn(self.import_from(Path(path))))
        dialog.open()

    async def import_from(self, path: Path) -> None:
        """Import the file as new conversations; the list then shows them, the first one selected."""
        self._say(f"Importing {path.name}…")
        try:
            result = await self._library.import_file(path)
        except (ImportRefused, StorageFailed) as exc:
            self._say(f"{exc} {exc.action}".strip())
            return
        self._window.show_pane("Chat")
        pane = self._chat_pane
        first = result.conversation_ids[0] if result.conversation_ids else None
        await pane.load_conversations(first, select=not pane.streaming)
        self._say(
            f"Imported {_count(len(result.conversation_ids), 'conversation')}"
            f" ({_count(result.messages, 'message')}) from {path.name}."
        )
