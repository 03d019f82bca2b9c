"""The chat pane's compare mode: a "New comparison" button beside "New chat", and the compare
view in place of the transcript and composer while a comparison is open."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from PySide6.QtGui import QShortcut
from PySide6.QtWidgets import QPushButton, QStackedWidget, QVBoxLayout, QWidget

from desktop_app.domain.conversations import Conversation
from desktop_app.ui.chat.compare import CompareView

if TYPE_CHECKING:
    from desktop_app.ui.chat.pane import ChatPane


class CompareModeMixin:
    """For ChatPane: `_with_compare_mode(centre)` builds the view and the stack that holds both."""

    compare: CompareView
    compare_button: QPushButton
    _mode_stack: QStackedWidget

    @property
    def _pane(self) -> ChatPane:
        return cast("ChatPane", self)

    def _with_compare_mode(self, centre: QWidget) -> QStackedWidget:
        pane = self._pane
        self.compare = CompareView(
            chat=pane._chat,
            picker_model=pane.picker_model,
            shared_params=pane.params.params,
            provider_of=self._provider_of,
        )
        self.compare_button = QPushButton("New comparison")
        self.compare_button.setToolTip("Send the same turn to 2–4 models or settings side by side")
        box = pane.conversations_box.layout()
        assert box is not None
        cast(QVBoxLayout, box).insertWidget(1, self.compare_button)
        box.addWidget(self.compare.wins_label)
        self._mode_stack = QStackedWidget()
        self._mode_stack.addWidget(centre)
        self._mode_stack.addWidget(self.compare)
        self.compare_button.clicked.connect(lambda: pane._tasks.spawn(self.new_comparison()))
        self.compare.conversation_created.connect(self._on_comparison_created)
        self.compare.comparison_ended.connect(self._on_comparison_ended)
        self.compare.conversation_renamed.connect(lambda c: pane.conversations.refresh_title(c.id, c.title))
        # Each column's reply is a reply like the pane's own for whoever follows them (the garbage
        # collector holds its old generations while one streams; the Usage pane reloads after).
        self.compare.column_started.connect(lambda _lane: pane.reply_started.emit())
        self.compare.column_finished.connect(lambda _lane, outcome: pane.reply_finished.emit(outcome))
        pane.conversations.rowsRemoved.connect(self._on_conversation_removed)
        # The wins are read with the list: at start, once the store is open, and after a reopen.
        pane.conversations.modelReset.connect(lambda: pane._tasks.spawn(self.compare.show_wins()))
        return self._mode_stack

    def _provider_of(self, target_id: str) -> str:
        account = self._pane._accounts.find(target_id)
        return account.provider_id if account is not None else ""

    @property
    def comparing(self) -> bool:
        return self._mode_stack.currentWidget() is self.compare

    async def new_comparison(self) -> None:
        """An empty comparison: two columns, both on the model picked now (change either)."""
        pane = self._pane
        await pane.stop_and_wait()
        await pane._remember_settings()
        pane._current = None
        pane.conversations_box.view.clearSelection()
        pane.conversations_box.view.setCurrentIndex(pane.conversations.index(-1))
        selected = pane.selected_model() or ("", "")
        self.compare.reset([selected, selected])
        self._show_mode(compare=True)
        self.compare.composer.setFocus()

    async def _show_compare(self, conversation: Conversation) -> bool:
        """Open `conversation` in the view its kind needs; True if it is a comparison."""
        self._show_mode(compare=conversation.compare is not None)
        if conversation.compare is None:
            return False
        await self.compare.open(conversation)
        return True

    def _show_mode(self, *, compare: bool) -> None:
        """The compare view or the transcript; the pane's own Send/Stop keys only with the latter."""
        pane = self._pane
        self._mode_stack.setCurrentIndex(1 if compare else 0)
        for shortcut in pane.findChildren(QShortcut):
            if shortcut.parent() is pane:
                shortcut.setEnabled(not compare)

    def _on_conversation_removed(self) -> None:
        """The comparison shown was deleted (and nothing else opened): an empty one takes its place."""
        shown = self.compare.conversation
        if shown is not None and self._pane.conversations.row_of(shown.id) < 0:
            self.compare.reset([c.target() or ("", "") for c in self.compare.columns])

    def _on_comparison_created(self, conversation: Conversation) -> None:
        pane = self._pane
        pane._current = conversation
        pane.conversations.upsert_front(conversation)
        pane.conversations_box.view.setCurrentIndex(pane.conversations.index(0))

    def _on_comparison_ended(self, conversation: Conversation) -> None:
        # The picker first: opening stores what it shows into the conversation being left (this one).
        pane = self._pane
        pane.select_model(conversation.account_id, conversation.model)
        pane._tasks.spawn(pane.open_conversation(conversation))
