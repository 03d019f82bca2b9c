"""Iterating on a turn of the chat: regenerate a reply, edit a message, delete, branch, switch versions.

The transcript's header links name a message by its place in the branch shown; the place is
looked up in the store when the link is used, and a transcript that no longer matches the store
is shown again rather than acted on. Nothing changes while a reply streams. An edit is typed in
its own box under the transcript (the composer keeps its draft); an edit the store refuses stays
in that box, with the sentence that says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.conversations import StoredMessage
from desktop_app.domain.errors import DomainError, StorageFailed
from desktop_app.ui.theme import set_tone

if TYPE_CHECKING:
    from desktop_app.ui.chat.pane import ChatPane

WHILE_STREAMING = "Wait for the reply to finish (or stop it) before changing the conversation."
OUT_OF_DATE = "The conversation had changed since it was shown; it is shown as stored now. Try again."
EDIT_GONE = "The message being edited is no longer in the conversation; your text is kept here."
EDIT_TITLE = "Editing your message: it is sent as a new version, the old one stays."
EDIT_RESULT_TITLE = "Editing the result for {call}: it is sent as a new version, the old one stays."


class EditBox(QFrame):
    """The box a message is edited in: Ctrl+Enter sends the edit, Esc cancels."""

    submitted = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="editBox")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(EDIT_TITLE)
        self.problem = QLabel(objectName="editProblem", wordWrap=True)
        self.problem.setVisible(False)
        set_tone(self.problem, "error")
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Message — Ctrl+Enter sends the edit, Esc cancels")
        self.editor.setFixedHeight(96)
        self.editor.installEventFilter(self)
        self.send_button = QPushButton("Send edit")
        self.cancel_button = QPushButton("Cancel")
        self.send_button.clicked.connect(lambda: self.submitted.emit(self.editor.toPlainText()))
        self.cancel_button.clicked.connect(self.cancelled)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.editor, 1)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.problem)
        layout.addLayout(row)
        self.setVisible(False)

    def start(self, text: str, title: str = EDIT_TITLE) -> None:
        self.title.setText(title)
        self.editor.setPlainText(text)
        self.say("")
        self.setVisible(True)
        self.editor.setFocus()
        self.editor.moveCursor(self.editor.textCursor().MoveOperation.End)

    def say(self, sentence: str) -> None:
        self.problem.setText(sentence)
        self.problem.setVisible(bool(sentence))

    def finish(self) -> None:
        self.setVisible(False)
        self.editor.clear()
        self.say("")

    def eventFilter(self, watched, event) -> bool:
        # The pane's own Ctrl+Enter (send) and Esc (stop) shortcuts must not take these keys from here.
        kind = event.type()
        if watched is self.editor and kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            key, mods = event.key(), event.modifiers()
            send = key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and mods & Qt.KeyboardModifier.ControlModifier
            if send or key == Qt.Key.Key_Escape:
                event.accept()
                if kind == QEvent.Type.KeyPress:
                    if send:
                        self.submitted.emit(self.editor.toPlainText())
                    else:
                        self.cancelled.emit()
                return True
        return super().eventFilter(watched, event)


class TurnActions(QObject):
    """The transcript's per-message actions for a ChatPane (whose reply state they share)."""

    def __init__(self, pane: ChatPane) -> None:
        super().__init__(pane)
        self._pane = pane
        self._chat = pane._chat
        self.edit_box = EditBox()
        self.confirm_box: QMessageBox | None = None  # the open "Delete?" question
        self._editing: StoredMessage | None = None
        self._put_aside: dict[int, tuple[StoredMessage, str]] = {}  # conversation -> (message, edited text)
        pane.transcript.set_turn_actions(True)
        pane.transcript.turn_action_requested.connect(self._on_transcript_turn_action_requested)
        pane.conversation_opened.connect(self._on_pane_conversation_opened)
        pane.transcript.recoloured.connect(self._on_transcript_recoloured)
        self._following_theme = True
        self.edit_box.submitted.connect(self._on_edit_box_submitted)
        self.edit_box.cancelled.connect(self.cancel_edit)

    @property
    def editing(self) -> StoredMessage | None:
        return self._editing

    def _on_transcript_turn_action_requested(self, action: str, place: int) -> None:
        pane = self._pane
        if pane.streaming:
            pane.show_notice(WHILE_STREAMING)
            return
        if action == "regenerate":
            pane._start_reply(pane._saying_storage_faults(self.regenerate(place)))
        else:
            pane._tasks.spawn(pane._saying_storage_faults(self.act(action, place)))

    def _on_edit_box_submitted(self, text: str) -> None:
        if self._pane.streaming:
            self.edit_box.say(WHILE_STREAMING)
            return
        self._pane._start_reply(self.send_edit(text))

    def _on_pane_conversation_opened(self, conversation_id: int) -> None:
        # An edit under way is put aside with its conversation, not lost, and back when it reopens.
        if self._editing is not None and self._editing.conversation_id != conversation_id:
            self._put_aside[self._editing.conversation_id] = (self._editing, self.edit_box.editor.toPlainText())
            self._editing = None
            self.edit_box.finish()
        if self._editing is None and (held := self._put_aside.pop(conversation_id, None)) is not None:
            self._editing = held[0]
            self.edit_box.start(held[1], _edit_title(held[0]))

    def close(self) -> None:
        """The pane closed: a later theme change shows nothing again (the loop may be gone). Idempotent."""
        if self._following_theme:
            self._following_theme = False
            self._pane.transcript.recoloured.disconnect(self._on_transcript_recoloured)

    def _on_transcript_recoloured(self) -> None:
        # Code blocks were highlighted for the old theme: show the conversation again in the new
        # one (not while a reply streams: it is shown again when it is next opened).
        conversation = self._pane.current_conversation
        if conversation is not None and not self._pane.streaming:
            self._pane._tasks.spawn(self._show_again(conversation), name="chat:recolour")

    async def _message_at(self, place: int, roles: tuple[str, ...] = ()) -> StoredMessage | None:
        """The stored message shown at `place` (of one of `roles`, when given); None (and the
        transcript shown afresh) if the transcript no longer matches the store."""
        conversation = self._pane.current_conversation
        if conversation is None:
            return None
        messages = await self._chat.store.messages(conversation.id)
        transcript = self._pane.transcript
        shown = messages[place] if len(messages) == transcript.turn_count and place < len(messages) else None
        if shown is not None and (not roles or shown.role in roles):
            return shown
        await self._show_again(conversation)
        self._pane.show_notice(OUT_OF_DATE)
        return None

    async def _show_again(self, conversation) -> None:
        """The transcript as stored, scrolled where it was."""
        bar = self._pane.transcript.verticalScrollBar()
        value = bar.value()
        await self._pane._show_stored(conversation)
        bar.setValue(min(value, bar.maximum()))

    # --- the actions -------------------------------------------------------------------------

    async def act(self, action: str, place: int) -> None:
        """Edit, delete, branch or switch version (previous/next) at the message shown at `place`."""
        # A tool result is edited as the user's message is: the model answers the new version.
        message = await self._message_at(place, ("user", "tool") if action == "edit" else ())
        if message is None:
            return
        self._pane.show_notice("")
        if action == "edit":
            self._editing = message
            self.edit_box.start(message.content, _edit_title(message))
        elif action == "delete":
            self._ask_delete(message, await self._chat.store.subtree_size(message.id))
        elif action == "branch":
            await self.branch(message)
        elif action in ("previous", "next"):
            await self.show_version(message, -1 if action == "previous" else 1)

    async def regenerate(self, place: int) -> None:
        """A new answer to the question of the reply at `place`, streamed as the reply's newest version."""
        pane = self._pane
        message = await self._message_at(place, ("assistant",))
        conversation = pane.current_conversation
        if message is None or conversation is None:
            return
        await pane._remember_settings()
        if (problem := await pane._refusal(None)) is not None:
            pane._show_refusal(problem)
            return
        versions = len(await self._chat.store.versions(message.id))
        events = await self._chat.regenerate(conversation, message.id)
        await pane._show_stored(conversation)
        pane.transcript.live_versions = (versions + 1, versions + 1)
        await pane._stream(events)
        if pane.current_conversation is conversation:
            pane.conversations.upsert_front(conversation)

    async def send_edit(self, text: str) -> None:
        """Send the edit box's text as a new version of the message being edited and stream its answer.
        Refused or not stored: the text stays in the box and the box says why."""
        pane, original = self._pane, self._editing
        conversation = pane.current_conversation
        if original is None or conversation is None:
            return
        await pane._remember_settings()
        if (problem := await pane._refusal(text)) is not None:
            self.edit_box.say(_sentence(problem))
            return
        try:
            events = await self._chat.edit(conversation, original.id, text)
        except StorageFailed as exc:
            self.edit_box.say(_sentence(exc.kept("your edit is kept here")))
            return
        except KeyError:
            self.edit_box.say(EDIT_GONE)
            return
        except DomainError as exc:
            self.edit_box.say(_sentence(exc))
            return
        self._editing = None
        self.edit_box.finish()
        await pane._show_stored(conversation)
        await pane._stream(events)
        if pane.current_conversation is conversation:
            pane.conversations.upsert_front(conversation)

    def cancel_edit(self) -> None:
        self._editing = None
        self.edit_box.finish()
        self._pane.composer.setFocus()

    def _ask_delete(self, message: StoredMessage, count: int) -> None:
        what = "your message" if message.role == "user" else "this reply"
        if count <= 1:
            text = f"Delete {what}? Nothing follows it."
        else:
            text = f"Delete {what} and everything after it? {count} messages go, on every branch from here."
        box = QMessageBox(
            QMessageBox.Icon.Question, "Delete message", text, QMessageBox.StandardButton.Cancel, self._pane
        )
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: self._on_confirm_box_clicked(button is delete, message))
        box.finished.connect(lambda _result: setattr(self, "confirm_box", None))
        self.confirm_box = box
        box.open()

    def _on_confirm_box_clicked(self, confirmed: bool, message: StoredMessage) -> None:
        if confirmed:
            self._pane._tasks.spawn(self._pane._saying_storage_faults(self.delete(message)))

    async def delete(self, message: StoredMessage) -> int:
        """Delete the message and all that follows it; returns how many went."""
        if self._pane.streaming:
            self._pane.show_notice(WHILE_STREAMING)
            return 0
        count = await self._chat.delete_turn(message.id, keep=self._pane.attachment_tray.pending())
        if self._editing is not None and self._editing.id == message.id:
            self.cancel_edit()
        conversation = self._pane.current_conversation
        if conversation is not None and conversation.id == message.conversation_id:
            await self._show_again(conversation)
        return count

    async def branch(self, message: StoredMessage) -> None:
        """A new conversation with the branch up to `message`, opened."""
        conversation = await self._chat.branch(message.id)
        await self._pane.load_conversations(conversation.id)

    async def show_version(self, message: StoredMessage, step: int) -> None:
        conversation = self._pane.current_conversation
        if conversation is not None and await self._chat.show_version(message.id, step) is not None:
            await self._show_again(conversation)


def _edit_title(message: StoredMessage) -> str:
    return EDIT_RESULT_TITLE.format(call=message.tool_call_id) if message.role == "tool" else EDIT_TITLE


def _sentence(problem: DomainError) -> str:
    return " ".join(part for part in (problem.message, problem.action) if part)
