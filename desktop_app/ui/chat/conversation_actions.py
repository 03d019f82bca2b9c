"""The chat pane's conversation list: loading it, opening the one picked, new, rename and delete."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QMessageBox

from desktop_app.domain.errors import StorageFailed


class ConversationActionsMixin:
    """ChatPane's conversation-list methods (dialogs are non-modal: open() and signals)."""

    async def load_conversations(self, select_id: int | None = None, *, select: bool = True) -> None:
        """Read the list's first page again (down to `select_id`, which is then made current)."""
        try:
            await self.conversations.load(select_id)
        except StorageFailed:
            return  # the banner says why, with what to do
        finally:
            self._show_store_state()
        if not self.conversations.rowCount() or not select:
            return
        row = self.conversations.row_of(select_id) if select_id is not None else 0
        if row < 0 and select_id is not None and await self._open_unlisted(select_id):
            return
        self.conversations_box.view.setCurrentIndex(self.conversations.index(max(row, 0)))

    async def _open_unlisted(self, conversation_id: int) -> bool:
        """Open a conversation further down the list than was read (its row comes as the list
        scrolls); False when it is gone or cannot be read."""
        try:
            conversation = await self._chat.store.get_conversation(conversation_id)
        except StorageFailed:
            return False
        if conversation is None:
            return False
        self.conversations_box.view.setCurrentIndex(self.conversations.index(-1))
        await self.open_conversation(conversation)
        return True

    def _on_rows_listed(self, _parent, first: int, last: int) -> None:
        """The conversation open but not listed then (`_open_unlisted`) is selected once its row comes."""
        view = self.conversations_box.view
        if self._current is None or view.currentIndex().isValid():
            return
        row = self.conversations.row_of(self._current.id)
        if first <= row <= last:
            view.setCurrentIndex(self.conversations.index(row))

    def _on_conversation_selected(self, current, _previous) -> None:
        conversation = self.conversations.conversation_at(current.row()) if current.isValid() else None
        if conversation is not None and (self._current is None or conversation.id != self._current.id):
            self._tasks.spawn(self.open_conversation(conversation))

    async def rename_current(self, title: str) -> None:
        if self._current is None or not title.strip():
            return
        await self._chat.store.rename_conversation(self._current.id, title.strip())
        self._current.title = title.strip()
        self.conversations.refresh_title(self._current.id, self._current.title)

    async def delete_current(self) -> None:
        if self._current is None:
            return
        await self.stop_and_wait()
        doomed, self._current = self._current, None
        waiting = self.attachment_tray.pending() | self.compare.attachment_tray.pending()
        await self._chat.delete_conversation(doomed.id, keep=waiting)
        self.conversations.remove(doomed.id)
        self.transcript.clear_transcript()
        if self.conversations.rowCount():
            self.conversations_box.view.setCurrentIndex(self.conversations.index(0))

    def _on_new_clicked(self) -> None:
        self._tasks.spawn(self._saying_storage_faults(self.new_conversation()))

    def _on_rename_clicked(self) -> None:
        if self._current is None:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename conversation")
        dialog.setLabelText("Name")
        dialog.setTextValue(self._current.title)
        dialog.textValueSelected.connect(
            lambda text: self._tasks.spawn(self._saying_storage_faults(self.rename_current(text)))
        )
        dialog.open()

    def _on_delete_clicked(self) -> None:
        if self._current is None:
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Delete conversation",
            f"Delete “{self._current.title}” and all its messages?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.accepted.connect(lambda: self._tasks.spawn(self._saying_storage_faults(self.delete_current())))
        box.open()
