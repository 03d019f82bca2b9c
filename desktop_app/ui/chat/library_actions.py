"""The chat pane's library: opening a search hit at its match, pins and tags from the list's menu."""

from __future__ import annotations

import re

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QInputDialog, QMenu

from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.search import SearchHit, SearchQuery
from desktop_app.ui.chat.find_bar import FindBar, pattern_of
from desktop_app.ui.chat.search_panel import SearchPanel

TITLE_MODES = {
    "off": "Off",
    "local": "With local models (free)",
    "all": "With every model (paid ones too: the cost shows in Usage)",
}


class LibraryActionsMixin:
    """ChatPane's search, pin and tag methods (dialogs are non-modal: open() and signals)."""

    def _search_panel(self) -> SearchPanel:
        """The search panel, for the conversations box (built before the transcript)."""
        self.search_panel = SearchPanel(
            store=self._chat.store, spawn=self._tasks.spawn, account_label=self.account_label
        )
        return self.search_panel

    def _find_bar(self) -> FindBar:
        """The transcript's find bar; also connects what the library's widgets ask for."""
        self.find_bar = FindBar(view=self.transcript)
        self.search_panel.hit_opened.connect(
            lambda query, hit: self._tasks.spawn(self._saying_storage_faults(self.open_hit(query, hit)))
        )
        self.conversations_box.view.customContextMenuRequested.connect(self._on_conversations_menu_requested)
        self.reply_finished.connect(self._on_reply_finished_for_title)
        # The matches are places in the transcript shown: another conversation or a new reply moves them.
        self.conversation_opened.connect(self.find_bar.dismiss)
        self.reply_started.connect(self.find_bar.dismiss)
        return self.find_bar

    def account_label(self, account_id: str) -> str:
        for item in [*self._accounts.accounts, *self._accounts.pools]:
            if item.id == account_id:
                return item.label
        return account_id

    async def open_hit(self, query: SearchQuery, hit: SearchHit) -> None:
        """Open the hit's conversation with the transcript at the match (the title's: its first)."""
        conversation = await self._chat.store.get_conversation(hit.conversation_id)
        if conversation is None:
            self.show_notice("That conversation was deleted.")
            return
        if self._current is None or self._current.id != conversation.id:
            await self.open_conversation(conversation)
        row = self.conversations.row_of(conversation.id)
        if row >= 0:
            self.conversations_box.view.setCurrentIndex(self.conversations.index(row))
        await self.stored.render_all()  # next/previous go through every match, the earliest too
        self.find_bar.find(query.text, at=await self._place_of(hit, query))

    async def _place_of(self, hit: SearchHit, query: SearchQuery) -> int:
        """How many matches the transcript shows before the hit's message (0 if it is not shown)."""
        if hit.message_id is None:
            return 0
        expression = re.compile(pattern_of(query.text), re.IGNORECASE)
        before = 0
        for message in await self._chat.store.messages(hit.conversation_id):
            if message.id == hit.message_id:
                return before
            before += len(expression.findall(message.content))
        return 0

    # --- pins and tags ----------------------------------------------------------------------------

    def conversation_menu(self, row: int) -> QMenu | None:
        """The list's context menu for the conversation at `row`: pin or unpin, tags."""
        conversation = self.conversations.conversation_at(row)
        if conversation is None:
            return None
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        pin = menu.addAction("Unpin" if conversation.pinned else "Pin to top")
        pin.triggered.connect(
            lambda: self._tasks.spawn(
                self._saying_storage_faults(self.set_pinned(conversation.id, not conversation.pinned))
            )
        )
        tags = menu.addAction("Tags…")
        tags.triggered.connect(lambda: self._edit_tags(conversation.id, conversation.tags))
        if (titles := self._chat.titles) is not None:
            choices = menu.addMenu("Automatic titles")
            for mode, text in TITLE_MODES.items():
                action = choices.addAction(text)
                action.setCheckable(True)
                action.setChecked(titles.mode == mode)
                action.triggered.connect(lambda _checked, mode=mode: self._tasks.spawn(titles.set_mode(mode)))
        return menu

    async def auto_title(self) -> None:
        """After the first reply: the title the conversation's model gives it, if the setting asks."""
        conversation, titles = self._current, self._chat.titles
        if conversation is None or titles is None:
            return
        try:
            title = await titles.name(conversation)
        except StorageFailed:
            return  # a title is no reason to interrupt: the banner says why the store failed
        if title:
            self.conversations.refresh_title(conversation.id, title)

    def _on_reply_finished_for_title(self, outcome: str) -> None:
        titles, conversation = self._chat.titles, self._current
        if outcome == "complete" and titles is not None and conversation is not None and titles.wanted(conversation):
            self._tasks.spawn(self.auto_title())

    async def set_pinned(self, conversation_id: int, pinned: bool) -> None:
        await self._chat.store.set_pinned(conversation_id, pinned)
        await self._reload_list()

    async def set_tags(self, conversation_id: int, text: str) -> None:
        """`text`: tags separated by commas."""
        await self._chat.store.set_tags(conversation_id, text.split(","))
        await self._reload_list()
        await self.search_panel.reload_choices()

    async def _reload_list(self) -> None:
        current = self._current.id if self._current is not None else None
        await self.load_conversations(current, select=current is not None)
        if self._current is not None and (fresh := await self._chat.store.get_conversation(self._current.id)):
            self._current.pinned, self._current.tags = fresh.pinned, fresh.tags
        if self.search_panel.results.rowCount() or not self.search_panel.query().empty:
            await self.search_panel.search()

    def _edit_tags(self, conversation_id: int, tags: tuple[str, ...]) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Tags")
        dialog.setLabelText("Tags, separated by commas")
        dialog.setTextValue(", ".join(tags))
        dialog.textValueSelected.connect(
            lambda text: self._tasks.spawn(self._saying_storage_faults(self.set_tags(conversation_id, text)))
        )
        dialog.open()

    def _on_conversations_menu_requested(self, position: QPoint) -> None:
        box = self.conversations_box
        menu = self.conversation_menu(box.view.indexAt(position).row())
        if menu is not None:
            menu.addSeparator()
            menu.addAction(box.export_action)  # the selected conversations, this one among them
            box.context_menu = menu
            menu.popup(box.view.viewport().mapToGlobal(position))
