"""A stored branch in the transcript, its end first: what opening a conversation shows.

The last `FIRST` messages are rendered at once (the end is what the view shows); the earlier ones
go in before them `BATCH` at a time as the view nears its top, each batch in one edit, the view
keeping its place. Each message keeps its place in the branch, so the header links name the
stored message whichever batch drew it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QTextCursor

from desktop_app.domain.conversations import MessageStatus, StoredMessage
from desktop_app.ui.chat.tool_cards import shown_text
from desktop_app.ui.chat.transcript import TranscriptView

FIRST = 40
BATCH = 30
INTERRUPTED_NOTE = "Interrupted: ModelDesk closed while this reply was arriving"
# Whether it is sent is decided in domain.conversations.SENT_AS_CONTEXT; this says so on the turn.
INTERRUPTED_CONTEXT_NOTE = "; the text above goes with your next message as context"

Held = Callable[[int], "dict | None"]  # a reply's values the store has not taken yet, by message id


class StoredTranscript(QObject):
    """Renders stored messages into `transcript`, the end first and the rest as the user scrolls up.

    `held(message_id)` gives what a reply still held in memory says over the stored row, and
    `unsaved_problem()` why it is not saved yet (None when nothing is held)."""

    def __init__(self, *, transcript: TranscriptView, held: Held, unsaved_problem: Callable[[], object]) -> None:
        super().__init__(transcript)
        self._transcript = transcript
        self._held = held
        self._unsaved_problem = unsaved_problem
        self._earlier: list[StoredMessage] = []  # not rendered yet, oldest first
        self._batch_due = QTimer(self)
        self._batch_due.setSingleShot(True)
        self._batch_due.setInterval(0)
        self._batch_due.timeout.connect(self._on_batch_due_timeout)
        transcript.cleared.connect(self.forget)
        bar = transcript.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(lambda _low, _high: self._on_scrolled(bar.value()))

    @property
    def earlier(self) -> int:
        """How many messages before the first shown are not rendered yet."""
        return len(self._earlier)

    def show(self, messages: list[StoredMessage]) -> None:
        """Render the branch (the transcript just cleared): its last messages now, the rest later."""
        split = max(0, len(messages) - FIRST)
        self._earlier = messages[:split]
        self._transcript.start_places_at(split)
        edit = QTextCursor(self._transcript.document())
        edit.beginEditBlock()  # Qt lays the messages out once, not once each
        try:
            self._render(messages[split:])
        finally:
            edit.endEditBlock()

    def forget(self) -> None:
        """The transcript shows something else now: render nothing more into it."""
        self._earlier = []
        self._batch_due.stop()

    def render_earlier(self, count: int = BATCH) -> None:
        """Render up to `count` more of the earlier messages, before those shown."""
        if not self._earlier or self._transcript.live:
            return
        batch, self._earlier = self._earlier[-count:], self._earlier[:-count]
        with self._transcript.prepending(len(self._earlier)):
            self._render(batch)

    async def render_all(self) -> None:
        """Render every earlier message, a batch per turn of the loop (the window stays live)."""
        while self._earlier and not self._transcript.live:
            self.render_earlier()
            await asyncio.sleep(0)

    def _render(self, messages: list[StoredMessage]) -> None:
        transcript = self._transcript
        for message in messages:
            if message.role in ("user", "tool"):
                transcript.add_user_message(
                    shown_text(message, message.content),
                    versions=(message.version, message.versions),
                    attachments=message.attachments,
                    speaker="Tool result" if message.role == "tool" else "You",
                )
                continue
            held = self._held(message.id)
            content, status, error = message.content, message.status, message.error
            request = message.request
            if held is not None:
                content, status = held.get("content", content), held.get("status", status)
                error, request = held.get("error", error), held.get("request", request)
            note = {
                MessageStatus.STOPPED: "Stopped",
                MessageStatus.STREAMING: INTERRUPTED_NOTE,
                MessageStatus.INTERRUPTED: INTERRUPTED_NOTE,
                MessageStatus.FAILED: error,
            }.get(status, "")
            if status is MessageStatus.INTERRUPTED and content:
                note += INTERRUPTED_CONTEXT_NOTE
            problem = self._unsaved_problem()
            if held is not None and problem is not None:
                saved = f"Not saved yet: {problem.message}"  # type: ignore[attr-defined]
                note = " ".join(filter(None, [note if status is not MessageStatus.STREAMING else "", saved]))
            transcript.add_assistant_message(
                shown_text(message, content),
                footer=message.metrics.summary(),
                note=note,
                request=request,
                versions=(message.version, message.versions),
                reasoning=message.reasoning,
                thinking=message.metrics.thinking_summary(),
            )

    def _on_scrolled(self, value: int) -> None:
        # Near the top (or nothing to scroll yet): the next batch, once this event is handled.
        if self._earlier and value <= self._transcript.viewport().height():
            self._batch_due.start()

    def _on_batch_due_timeout(self) -> None:
        self.render_earlier()
