"""Tool calls under the transcript: a card per call, filled in as its pieces stream, then checked
against the function's schema, with a box for the user's answer; "Send results" sends them all.

A result the user marked as JSON that does not parse is refused in one sentence on its card, and
every answer typed stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.conversations import MessageStatus, StoredMessage
from desktop_app.domain.errors import DomainError
from desktop_app.domain.tools import ToolCall, ToolCallDelta, ToolCalls, ToolSpec, check_arguments, result_problem
from desktop_app.ui.theme import set_tone

if TYPE_CHECKING:
    from desktop_app.ui.chat.pane import ChatPane


class ToolCallCard(QFrame):
    """One call: its function, its arguments (pretty-printed, checked) and the answer box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.call: ToolCall | None = None
        self._name, self._arguments = "", ""
        self.title = QLabel()
        self.title.setTextFormat(self.title.textFormat().PlainText)
        self.arguments = QPlainTextEdit()
        self.arguments.setReadOnly(True)
        self.arguments.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.arguments.setMaximumHeight(96)
        self.verdict = QLabel("Arriving…")
        self.verdict.setWordWrap(True)
        self.answer = QPlainTextEdit()
        self.answer.setPlaceholderText("The result to give the model")
        self.answer.setMaximumHeight(64)
        self.as_json = QCheckBox("Return this as JSON")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.hide()
        set_tone(self.problem, "error")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        for widget in (self.title, self.arguments, self.verdict, self.answer, self.as_json, self.problem):
            layout.addWidget(widget)
        self.answer.setEnabled(False)
        self.as_json.setEnabled(False)
        self._show_title()

    def stream(self, delta: ToolCallDelta) -> None:
        """Another piece of the call, as it arrives: appended, never re-laid out."""
        if delta.name and not self._name:
            self._name = delta.name
            self._show_title()
        if delta.arguments:
            self._arguments += delta.arguments
            self.arguments.moveCursor(self.arguments.textCursor().MoveOperation.End)
            self.arguments.insertPlainText(delta.arguments)

    def settle(self, call: ToolCall, tools: Sequence[ToolSpec]) -> None:
        """The whole call: arguments pretty-printed and checked, the answer box open."""
        self.call, self._name = call, call.name
        self._show_title()
        verdict = check_arguments(call, tuple(tools))
        self.arguments.setPlainText(verdict.pretty)
        self.verdict.setText(("✓ " if verdict.valid else "✗ ") + verdict.message)
        set_tone(self.verdict, "ok" if verdict.valid else "error")
        self.answer.setEnabled(True)
        self.as_json.setEnabled(True)

    def result(self) -> tuple[str, str] | None:
        """(call id, text) to send, or None with the reason said on the card (the text stays)."""
        assert self.call is not None
        text = self.answer.toPlainText()
        problem = result_problem(text, as_json=self.as_json.isChecked())
        if problem is None and not text.strip():
            problem = f"Type a result for {self.call.name} first."
        self.problem.setText(problem or "")
        self.problem.setVisible(problem is not None)
        return None if problem else (self.call.id, text)

    def _show_title(self) -> None:
        self.title.setText(f"Call: {self._name or '…'}")


class ToolCallsPanel(QFrame):
    """The calls of the last reply, while they stream and until the user sends their results."""

    results_ready = Signal(list)  # [(call id, result text)], one per call, in order

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cards: list[ToolCallCard] = []
        self.heading = QLabel("The model asks to call these functions; answer each, then send.")
        self.heading.setWordWrap(True)
        self.send_button = QPushButton("Send results")
        self.send_button.setEnabled(False)
        holder = QWidget()
        self._cards = QVBoxLayout(holder)
        self._cards.setContentsMargins(0, 0, 0, 0)
        # Several calls scroll: the transcript above keeps its room.
        self.scroll = QScrollArea()
        self.scroll.setWidget(holder)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setMaximumHeight(300)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addWidget(self.heading)
        layout.addWidget(self.scroll)
        layout.addLayout(row)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.hide()

    def clear(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        self.send_button.setEnabled(False)
        self.hide()

    def on_event(
        self, event: ToolCallDelta | ToolCalls, tools: Sequence[ToolSpec], show: Callable[[str], None]
    ) -> None:
        """A streamed piece, or the whole calls (then also said in the transcript through `show`)."""
        if isinstance(event, ToolCallDelta):
            while len(self.cards) <= event.index:
                self._add_card()
            self.cards[event.index].stream(event)
            self.show()
            return
        self.show_calls(event.calls, tools)
        show(calls_markdown(event.calls))

    def show_calls(self, calls: Sequence[ToolCall], tools: Sequence[ToolSpec]) -> None:
        while len(self.cards) < len(calls):
            self._add_card()
        for card, call in zip(self.cards, calls, strict=False):
            card.settle(call, tools)
        self.send_button.setEnabled(True)
        self.show()

    def show_pending(self, messages: Sequence[StoredMessage], tools: Sequence[ToolSpec]) -> None:
        """Cards for the calls of the branch's last reply, when they wait for their results."""
        self.clear()
        last = messages[-1] if messages else None
        if last is not None and last.tool_calls and last.status is MessageStatus.COMPLETE:
            self.show_calls(last.tool_calls, tools)

    def _add_card(self) -> None:
        card = ToolCallCard(self)
        self.cards.append(card)
        self._cards.addWidget(card)

    def _on_send_clicked(self) -> None:
        results = [card.result() for card in self.cards]  # every card says its own problem
        if all(r is not None for r in results):
            self.results_ready.emit(results)


def calls_markdown(calls: Sequence[ToolCall]) -> str:
    """The calls as the transcript shows them under the reply's text."""
    return "\n\n".join(f"**Call** `{c.name}`\n\n```json\n{check_arguments(c, ()).pretty}\n```" for c in calls)


def shown_text(message: StoredMessage, content: str) -> str:
    """What the transcript shows for a stored message: a reply's text with its calls, or a result."""
    if message.role == "tool":
        return f"Result for {message.tool_call_id}:\n{content}"
    if message.tool_calls:
        return "\n\n".join(filter(None, [content, calls_markdown(message.tool_calls)]))
    return content


async def send_tool_results(pane: ChatPane, results: list[tuple[str, str]]) -> None:
    """Send the user's results for the last reply's calls and stream the model's next answer in `pane`."""
    if (conversation := pane.current_conversation) is None:
        return
    try:
        events = await pane._chat.answer_tool_calls(conversation, results)
    except DomainError as exc:  # refused, or the store could not take them: the answers stay typed
        pane._show_refusal(exc)
        return
    pane.tool_calls.clear()
    for call_id, text in results:
        pane.transcript.add_user_message(f"Result for {call_id}:\n{text}", speaker="Tool result")
    await pane._stream(events)
