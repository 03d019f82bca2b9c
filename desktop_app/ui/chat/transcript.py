"""The chat transcript: finished messages rendered from markdown, the live one streamed cheaply.

A streamed token is inserted as plain text through a cursor kept at the end of the document, so
its cost does not depend on how long the transcript is. A throttled timer later replaces the
finished blocks of the live message (up to its last blank line outside a code fence) with
rendered markdown, touching only the part of that message that is still plain.

Finished messages live inside one "history" frame and only the live message sits after it.
Qt's layout visits every child frame of the frame being edited on each change, and user
messages and markdown tables are frames: at the root they would make each token cost more as
the chat grows. When the live message finishes it is moved into the history once.

With turn actions on, each message's header carries links (Edit/Regenerate, Delete, Branch, and
"‹ 2/3 ›" on a turn with versions) naming the message by its place in the transcript, which shows
the stored branch in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QEvent, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFrameFormat,
)
from PySide6.QtWidgets import QTextBrowser, QWidget

from desktop_app.domain.attachments import Attachment
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.structured_output import Verdict
from desktop_app.ui.chat.attachment_tray import insert_attachment_line
from desktop_app.ui.chat.markdown import BlockSplitter, render_markdown
from desktop_app.ui.chat.reply_extras import ReplyExtras, json_link_label
from desktop_app.ui.chat.transcript_colours import recolour_document
from desktop_app.ui.theme import Colours, colours

RENDER_INTERVAL_MS = 150
# Qt lays a block out again whole on each insertion into it: a streamed line longer than this
# continues in a new block (at a space) until it is rendered, so an append costs the same at
# the end of a 100,000-character line as at its start.
PLAIN_BLOCK_CHARS = 2000
MESSAGE_SPACING = 14
TURN_ACTIONS = ("regenerate", "edit", "delete", "branch", "previous", "next")

# Inserted HTML merges its first block into the block at the cursor and loses that block's
# format (a heading would become plain text). Starting with an empty table makes Qt open a
# new block first, so the block before stays as it was and every rendered block keeps its own.
_OPEN_NEW_BLOCK = "<table></table>"
_END = QTextCursor.MoveOperation.End
_KEEP = QTextCursor.MoveMode.KeepAnchor


@dataclass
class _LiveMessage:
    """Positions inside the message being streamed, which is always last in the document."""

    start: int
    header_end: int
    tail_start: int  # end of the last rendered block: the plain tail follows from here
    fold: int | None = None  # its reasoning's fold in ReplyExtras
    tail_open: bool = False  # a block for plain text has been opened after tail_start
    in_code: bool = False  # the plain tail ends inside an open code fence, shown monospaced
    answer_started: bool = False
    tail_parts: list[str] = field(default_factory=list)
    fed_parts: int = 0
    tail_chars: int = 0  # characters of tail_parts
    tail_breaks: list[int] = field(default_factory=list)  # where (in tail_parts' text) a long line was cut
    splitter: BlockSplitter = field(default_factory=BlockSplitter)
    raw: list[str] = field(default_factory=list)  # the answer as received, for a JSON check


class TranscriptView(QTextBrowser):
    retry_requested = Signal()
    code_copied = Signal(str)
    code_view_requested = Signal(object)  # the SentRequest behind a reply ("View as code")
    turn_action_requested = Signal(str, int)  # (action, the message's place from 0): see TURN_ACTIONS
    attachment_open_requested = Signal(object)  # the Attachment whose thumbnail or name was clicked
    cleared = Signal()  # clear_transcript: what is shown from now on is something else
    recoloured = Signal()  # the theme changed what was shown (code blocks keep their old style until shown again)

    def __init__(self, parent: QWidget | None = None, *, render_interval_ms: int = RENDER_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        document = self.document()
        document.setUndoRedoEnabled(False)
        document.setDocumentMargin(14)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont)
        font.setPointSizeF(max(font.pointSizeF(), 10.0) + 1)
        document.setDefaultFont(font)
        self._code_blocks: list[str] = []
        self._requests: list[SentRequest] = []  # by the index in their "request:" links
        self._live_request: SentRequest | None = None
        self._live: _LiveMessage | None = None
        self._turn_actions = False
        self._turns = 0  # messages shown so far: the next one's place
        self._attachments: dict[str, Attachment] = {}  # digest -> the attachment shown, for its link
        self._attachment_path: Callable[[Attachment], Path] | None = None
        self.live_versions = (1, 1)  # (version, versions) the next streamed reply's header shows
        self._last_body: list[int | None] | None = None  # [start, end]; end None while live
        self._follow_bottom = True
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(render_interval_ms)
        self._render_timer.timeout.connect(self._on_render_timer_timeout)
        self.anchorClicked.connect(self._on_anchor_clicked)
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_scroll_range_changed)
        bar.valueChanged.connect(self._on_scroll_value_changed)
        self._colours: Colours | None = None
        self._extras = ReplyExtras(document)
        self._apply_palette()
        self._reset_document()

    # -- public API -------------------------------------------------------------------------

    def clear_transcript(self) -> None:
        self._render_timer.stop()
        self._live = None
        self._last_body = None
        self._code_blocks.clear()
        self._requests.clear()
        self._live_request = None
        self._follow_bottom = True
        self._turns = 0
        self._attachments.clear()
        self._extras.clear()
        self._reset_document()
        self.cleared.emit()

    def set_turn_actions(self, enabled: bool) -> None:
        """Offer the per-message actions on the messages added from now on."""
        self._turn_actions = enabled

    def start_places_at(self, place: int) -> None:
        """The next message added is at `place`: the `place` before it are not shown (yet)."""
        self._turns = place

    @property
    def live(self) -> bool:
        """A reply is streaming into the transcript."""
        return self._live is not None

    @contextmanager
    def prepending(self, first_place: int) -> Iterator[None]:
        """Messages added inside go before all shown (in a frame of their own, at places from
        `first_place`), in one edit; what was shown keeps its place on screen."""
        bar = self.verticalScrollBar()
        from_bottom, follow = bar.maximum() - bar.value(), self._follow_bottom
        history, turns, last_body = self._history, self._turns, self._last_body
        counts = self._extras.counts()
        before = self.document().characterCount()
        cursor = history.firstCursorPosition()
        at = cursor.position()
        cursor.beginEditBlock()
        self._history = cursor.insertFrame(QTextFrameFormat())
        self._turns = first_place
        try:
            yield
        finally:
            after = QTextCursor(self._history.lastCursorPosition())
            after.movePosition(QTextCursor.MoveOperation.NextBlock)
            if after.block().length() == 1:
                after.setBlockFormat(self._collapsed_block)
            self._history, self._turns, self._last_body = history, turns, last_body
            delta = self.document().characterCount() - before
            self._extras.shift_older(counts, at, delta)
            self._moved(at, delta)
            cursor.endEditBlock()
            self._follow_bottom = follow
            bar.setValue(bar.maximum() - from_bottom)

    def set_attachment_files(self, path_of: Callable[[Attachment], Path]) -> None:
        """Where attached files are kept, for the thumbnails under a message."""
        self._attachment_path = path_of

    def add_user_message(
        self,
        text: str,
        *,
        versions: tuple[int, int] = (1, 1),
        attachments: tuple[Attachment, ...] = (),
        speaker: str = "You",
    ) -> None:
        """A turn of the user's; `speaker` "Tool result" for the result of a tool call they answered."""
        self._end_live_message()
        cursor = self._history.lastCursorPosition()
        if cursor.block().length() == 1:
            cursor.setBlockFormat(self._collapsed_block)  # else it shows as a blank line
        frame = QTextFrameFormat()
        frame.setBackground(self._user_background)
        frame.setPadding(10)
        frame.setTopMargin(MESSAGE_SPACING)
        frame.setBottomMargin(MESSAGE_SPACING // 2)
        cursor.insertFrame(frame)
        cursor.insertText(speaker, self._header_format)
        self._insert_turn_actions(cursor, "user", versions)
        cursor.insertBlock(QTextBlockFormat(), self._text_format)
        start = cursor.position()
        cursor.insertText(text.replace("\r", ""), self._text_format)
        self._last_body = [start, cursor.position()]
        if attachments:
            self._insert_attachments(cursor, attachments)

    def add_assistant_message(
        self,
        markdown: str,
        *,
        footer: str = "",
        note: str = "",
        request: SentRequest | None = None,
        versions: tuple[int, int] = (1, 1),
        reasoning: str = "",
        thinking: str = "",
    ) -> None:
        """A finished reply; with `request`, its footer offers "View as code" (and checks JSON asked
        for); its `reasoning` is folded under a link that names `thinking` ("1,234 tokens, 3.2 s")."""
        self._end_live_message()
        cursor = self._history.lastCursorPosition()
        header_end = self._insert_header(cursor, versions)
        if reasoning.strip():
            fold_link = self._fold_link_format
            self._extras.add_fold(cursor, reasoning.replace("\r", ""), expanded=False, link=fold_link, summary=thinking)
            header_end = cursor.position()
        self._insert_markdown(header_end, markdown)
        self._last_body = [header_end + 1, self._history.lastPosition()]
        self._insert_footer(footer=footer, note=note, request=request, content=markdown)

    def set_live_request(self, request: SentRequest | None) -> None:
        """The request behind the reply being streamed, offered as code once it ends."""
        self._live_request = request

    def begin_assistant_message(self) -> None:
        self._end_live_message()
        self._live_request = None
        self._cursor.movePosition(_END)
        start = self._cursor.block().position()
        header_end = self._insert_header(self._cursor, self.live_versions)
        self.live_versions = (1, 1)
        self._live = _LiveMessage(start=start, header_end=header_end, tail_start=header_end)
        self._last_body = [header_end + 1, None]

    def append_reasoning(self, text: str) -> None:
        """Reasoning goes in a fold above the answer: open while only reasoning arrives."""
        live = self._live or self._begin_implicitly()
        text = text.replace("\r", "")
        if not text:
            return
        before = self.document().characterCount()
        if live.fold is None:
            cursor = QTextCursor(self.document())
            cursor.setPosition(live.header_end)
            live.fold = self._extras.add_fold(
                cursor, text, expanded=not live.answer_started, link=self._fold_link_format
            )
        else:
            self._extras.append_to_fold(live.fold, text)
        delta = self.document().characterCount() - before  # all of it went in before the answer
        live.tail_start += delta
        self._last_body[0] += delta

    def append_text(self, text: str) -> None:
        live = self._live or self._begin_implicitly()
        text = text.replace("\r", "")
        if not text:
            return
        if not live.tail_open:
            self._open_tail(live)
        cut = self._long_line_cut(live, text)
        if cut is None:
            self._cursor.insertText(text, self._code_format if live.in_code else self._text_format)
        else:
            if cut:
                self._cursor.insertText(text[:cut], self._text_format)
            self._cursor.insertBlock(self._cursor.blockFormat(), self._text_format)
            live.tail_breaks.append(live.tail_chars + cut)
            if text[cut:]:
                self._cursor.insertText(text[cut:], self._text_format)
        live.tail_parts.append(text)
        live.raw.append(text)
        live.tail_chars += len(text)
        if not self._render_timer.isActive():
            self._render_timer.start()

    def finish_assistant_message(self, *, footer: str = "", note: str = "", thinking: str = "") -> None:
        """End the streamed reply; `thinking` ("1,234 tokens, 3.2 s") goes in its reasoning's link."""
        live = self._live
        if live is None:
            return
        # One edit: Qt lays the history out once for the reply and its footer, not once for each.
        edit = QTextCursor(self.document())
        edit.beginEditBlock()
        self._end_live_message()
        if live.fold is not None and thinking:
            self._moved(*self._extras.set_summary(live.fold, thinking))
        request, self._live_request = self._live_request, None
        self._insert_footer(footer=footer, note=note, request=request, content="".join(live.raw))
        edit.endEditBlock()

    def show_error(self, message: str, *, action: str = "", retry: bool = True) -> None:
        self._end_live_message()
        cursor = self._history.lastCursorPosition()
        self._start_block(cursor, self._error_block_format, self._error_format)
        sentence = " ".join(part.strip() for part in (message, action) if part.strip())
        cursor.insertText(sentence, self._error_format)
        if retry:
            cursor.insertText("  ", self._error_format)
            cursor.insertText("Retry", self._retry_format)

    def plain_text_of_last_message(self) -> str:
        if self._last_body is None:
            return ""
        start, end = self._last_body
        end = self.character_count() if end is None else end
        if start >= end:
            return ""
        cursor = QTextCursor(self.document())
        cursor.setPosition(start)
        cursor.setPosition(end, _KEEP)
        return cursor.selection().toPlainText()

    @property
    def turn_count(self) -> int:
        """How many messages are shown (streamed ones included)."""
        return self._turns

    def character_count(self) -> int:
        return self.document().characterCount() - 1

    # -- streaming --------------------------------------------------------------------------

    def _long_line_cut(self, live: _LiveMessage, text: str) -> int | None:
        """Where in `text` to continue a too long plain line in a new block, if here at a space."""
        if live.in_code or self._cursor.block().length() <= PLAIN_BLOCK_CHARS:
            return None
        if text[0] in " \t":
            return 1
        if live.tail_parts and live.tail_parts[-1][-1:] in (" ", "\t") and text[0] != "\n":
            return 0
        return None

    def _begin_implicitly(self) -> _LiveMessage:
        self.begin_assistant_message()
        return self._live

    def _open_tail(self, live: _LiveMessage) -> None:
        if live.fold is not None and not live.answer_started:  # the answer starts: fold the reasoning
            self._moved(*self._extras.set_expanded(live.fold, False))
        self._cursor.insertBlock(QTextBlockFormat(), self._text_format)
        live.tail_open = True
        live.answer_started = True

    def _on_render_timer_timeout(self) -> None:
        if self._live is not None:
            self._render_live_tail(self._live, everything=False)
            self._show_open_fence_as_code(self._live)

    def _show_open_fence_as_code(self, live: _LiveMessage) -> None:
        """Give code still streaming a monospaced font, once per fence opened."""
        start = live.splitter.open_fence_start
        if (start is not None) == live.in_code:
            return
        live.in_code = start is not None
        if live.in_code:
            cursor = QTextCursor(self.document())
            breaks = sum(1 for at in live.tail_breaks if at <= start)  # each cut added a separator
            cursor.setPosition(live.tail_start + 1 + breaks + start)  # + 1: the tail's opening separator
            cursor.movePosition(_END, _KEEP)
            cursor.mergeCharFormat(self._code_format)

    def _render_live_tail(self, live: _LiveMessage, *, everything: bool) -> None:
        if live.fed_parts < len(live.tail_parts):
            live.splitter.feed("".join(live.tail_parts[live.fed_parts :]))
            live.fed_parts = len(live.tail_parts)
        tail = "".join(live.tail_parts) if everything or live.splitter.boundary else ""
        cut = len(tail) if everything else live.splitter.boundary
        if not cut:
            return
        complete, rest = tail[:cut], tail[cut:]
        live.splitter.drop_prefix(cut)
        live.tail_parts = [rest] if rest else []
        live.fed_parts = len(live.tail_parts)
        live.tail_chars, live.tail_breaks = len(rest), []
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        cursor.setPosition(live.tail_start)
        cursor.movePosition(_END, _KEEP)
        cursor.removeSelectedText()
        self._insert_markdown(live.tail_start, complete, cursor=cursor)
        cursor.endEditBlock()
        self._cursor.movePosition(_END)
        live.tail_start = self._cursor.position()
        live.tail_open = live.in_code = False
        if rest:
            self._open_tail(live)
            self._cursor.insertText(rest, self._text_format)

    def _end_live_message(self) -> None:
        """Move the live message into the history, rendering what is left of it there.

        The plain tail is rendered straight into the history, in the same edit as the move: Qt then
        lays the reply's last paragraph out once, not once where it streamed and again where it goes.
        """
        live, self._live = self._live, None
        if live is None:
            return
        self._render_timer.stop()
        tail = "".join(live.tail_parts)
        source = QTextCursor(self.document())
        source.beginEditBlock()
        if live.tail_open:
            source.setPosition(live.tail_start)
            source.movePosition(_END, _KEEP)
            source.removeSelectedText()
        source.setPosition(live.start)
        source.movePosition(_END, _KEEP)
        fragment = source.selection()
        source.removeSelectedText()
        source.setBlockFormat(self._collapsed_block)
        target = self._history.lastCursorPosition()
        # The fragment's first block merges into this one, so give it the header's format.
        self._start_block(target, self._header_block_format, self._header_format)
        shift = target.position() - live.start
        target.insertFragment(fragment)
        self._extras.move_last_fold(live.start, shift)
        if tail:
            self._insert_markdown(target.position(), tail, cursor=target)
        source.endEditBlock()
        self._last_body = [self._last_body[0] + shift, self._history.lastPosition()]
        self._cursor.movePosition(_END)

    # -- building blocks --------------------------------------------------------------------

    def _reset_document(self) -> None:
        document = self.document()
        document.clear()
        cursor = QTextCursor(document)
        cursor.setBlockFormat(self._collapsed_block)  # Qt keeps a block before every frame
        self._history = cursor.insertFrame(QTextFrameFormat())
        self._cursor = QTextCursor(document)
        self._cursor.movePosition(_END)
        self._cursor.setBlockFormat(self._collapsed_block)

    def _start_block(self, cursor: QTextCursor, block: QTextBlockFormat, char: QTextCharFormat) -> None:
        """Start a block at the cursor, reusing an empty one (as left after a frame or table)."""
        current = cursor.block()
        if current.length() == 1 and current.textList() is None and cursor.currentTable() is None:
            cursor.setBlockFormat(block)
            cursor.setBlockCharFormat(char)
            cursor.setCharFormat(char)
        else:
            cursor.insertBlock(block, char)

    def _insert_header(self, cursor: QTextCursor, versions: tuple[int, int]) -> int:
        self._start_block(cursor, self._header_block_format, self._header_format)
        cursor.insertText("Assistant", self._header_format)
        self._insert_turn_actions(cursor, "assistant", versions)
        return cursor.position()

    def _insert_turn_actions(self, cursor: QTextCursor, role: str, versions: tuple[int, int]) -> None:
        """The header's links for the message at the next place: "‹ 2/3 ›" and the actions."""
        place, self._turns = self._turns, self._turns + 1
        if not self._turn_actions:
            return
        version, count = versions
        cursor.insertText("    ", self._footer_format)
        if count > 1:
            # At the text's size, not the links' smaller one: the place among versions is read at a glance.
            plain = QTextCharFormat(self._footer_format)
            plain.setFontPointSize(self.document().defaultFont().pointSizeF())
            previous, following = version > 1, version < count
            cursor.insertText("‹", self._action_link("previous", place, plain) if previous else plain)
            cursor.insertText(f" {version}/{count} ", plain)
            cursor.insertText("›", self._action_link("next", place, plain) if following else plain)
            cursor.insertText("    ", self._footer_format)
        actions = [("Regenerate", "regenerate")] if role == "assistant" else [("Edit", "edit")]
        actions += [("Delete", "delete"), ("Branch", "branch")]
        for i, (label, action) in enumerate(actions):
            if i:
                cursor.insertText("  ·  ", self._footer_format)
            cursor.insertText(label, self._action_link(action, place))

    def _insert_attachments(self, cursor: QTextCursor, attachments: tuple[Attachment, ...]) -> None:
        """A line under the message: thumbnails and file names; a click opens the file."""
        self._attachments.update((a.digest, a) for a in attachments)
        insert_attachment_line(
            cursor, attachments, self._attachment_path, self._text_format, self._retry_format.foreground()
        )

    def _action_link(self, action: str, place: int, base: QTextCharFormat | None = None) -> QTextCharFormat:
        link = QTextCharFormat(base or self._footer_format)
        link.setAnchor(True)
        link.setAnchorHref(f"turn:{action}:{place}")
        link.setForeground(self._retry_format.foreground())
        link.setFontWeight(QFont.Weight.Normal)
        return link

    def _insert_markdown(self, position: int, source: str, *, cursor: QTextCursor | None = None) -> None:
        rendered = render_markdown(source, code_index_start=len(self._code_blocks), dark=self._dark)
        if not rendered.html.strip():
            return
        self._code_blocks.extend(rendered.code_blocks)
        cursor = cursor or QTextCursor(self.document())
        cursor.setPosition(position)
        # A trailing newline would become a space at the end of the last block.
        cursor.insertHtml(_OPEN_NEW_BLOCK + rendered.html.rstrip())

    def _insert_footer(
        self, *, footer: str, note: str, request: SentRequest | None = None, content: str | None = None
    ) -> None:
        for text, char in ((note, self._note_format), (footer, self._footer_format)):
            if text:
                cursor = self._history.lastCursorPosition()
                self._start_block(cursor, QTextBlockFormat(), char)
                cursor.insertText(text, char)
        if request is None:
            return
        cursor = self._history.lastCursorPosition()
        if footer:
            cursor.insertText("  ·  ", self._footer_format)
        else:
            self._start_block(cursor, QTextBlockFormat(), self._footer_format)
        link = QTextCharFormat(self._footer_format)
        link.setAnchor(True)
        link.setAnchorHref(f"request:{len(self._requests)}")
        link.setForeground(self._retry_format.foreground())
        self._requests.append(request)
        cursor.insertText("View as code", link)
        if content is not None and self._last_body is not None and self._last_body[1] is not None:
            checked = self._extras.add_json(request.params.get("response_format"), content, *self._last_body)
            if checked is not None:
                self._insert_json_badge(cursor, *checked)

    def _insert_json_badge(self, cursor: QTextCursor, verdict: Verdict, number: int) -> None:
        """ "✓ Valid JSON…" or "✗ <the first problem>", then the link that shows the JSON pretty or raw."""
        badge = QTextCharFormat(self._footer_format)
        role = self._colours or colours(self.palette())
        badge.setForeground(QColor(role.ok if verdict.valid else role.error))
        cursor.insertText("  ·  ", self._footer_format)
        cursor.insertText(f"{'✓' if verdict.valid else '✗'} {verdict.message}", badge)
        cursor.insertText("  ·  ", self._footer_format)
        link = QTextCharFormat(self._footer_format)
        link.setAnchor(True)
        link.setAnchorHref(f"json:{number}")
        link.setForeground(self._retry_format.foreground())
        start = cursor.position()
        cursor.insertText(json_link_label(False), link)
        self._extras.set_json_link(number, start, cursor.position(), link)

    def _moved(self, at: int, delta: int) -> None:
        """Text from `at` on moved by `delta` (a fold opened, a JSON view switched): so do the places kept."""
        if not delta:
            return
        if (live := self._live) is not None:
            live.start += delta if live.start >= at else 0
            live.header_end += delta if live.header_end >= at else 0
            live.tail_start += delta if live.tail_start >= at else 0
        if self._last_body is not None:
            self._last_body = [p + delta if p is not None and p >= at else p for p in self._last_body]

    # -- look -------------------------------------------------------------------------------

    def _apply_palette(self) -> None:
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        self._dark = base.lightnessF() < 0.5
        self._colours = role = colours(palette)
        muted = QColor(role.muted)
        self._user_background = QColor(role.user_block)
        self._collapsed_block = QTextBlockFormat()
        self._collapsed_block.setLineHeight(0, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
        self._text_format = QTextCharFormat()
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        self._code_format = QTextCharFormat()
        self._code_format.setFontFamilies([mono])
        self._header_format = QTextCharFormat()
        self._header_format.setFontWeight(QFont.Weight.Bold)
        self._header_block_format = QTextBlockFormat()
        self._header_block_format.setTopMargin(MESSAGE_SPACING)
        self._reasoning_format = QTextCharFormat()
        self._reasoning_format.setForeground(muted)
        self._reasoning_format.setFontItalic(True)
        self._reasoning_block_format = QTextBlockFormat()
        self._reasoning_block_format.setTopMargin(4)
        self._reasoning_block_format.setBottomMargin(4)
        self._note_format = QTextCharFormat(self._reasoning_format)
        self._reasoning_format.setFontPointSize(self.document().defaultFont().pointSizeF() * 0.9)
        self._footer_format = QTextCharFormat()
        self._footer_format.setForeground(muted)
        self._footer_format.setFontPointSize(self.document().defaultFont().pointSizeF() * 0.85)
        self._error_block_format = QTextBlockFormat()
        self._error_block_format.setTopMargin(8)
        self._error_format = QTextCharFormat()
        self._error_format.setForeground(QColor(role.error))
        self._retry_format = QTextCharFormat()
        self._retry_format.setAnchor(True)
        self._retry_format.setAnchorHref("retry:")
        self._retry_format.setFontUnderline(True)
        self._retry_format.setForeground(QColor(role.link))
        self._fold_link_format = QTextCharFormat(self._footer_format)
        self._fold_link_format.setForeground(QColor(role.link))
        self._extras.set_formats(
            reasoning=self._reasoning_format, block=self._reasoning_block_format, text=self._text_format
        )
        self.document().setDefaultStyleSheet(
            f"pre, code {{ font-family: '{mono}'; }}"
            f" code {{ background-color: {role.code_background}; }}"
            " h1 { font-size: x-large; } h2 { font-size: large; } h3 { font-size: medium; }"
            " a { text-decoration: none; }"
        )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            old = self._colours
            self._apply_palette()  # applies to what is added from now on
            if old is not None and old != self._colours:
                recolour_document(self.document(), old, self._colours)
                self.recoloured.emit()

    # -- reactions --------------------------------------------------------------------------

    def _on_anchor_clicked(self, url: QUrl) -> None:
        scheme = url.scheme().lower()
        if scheme == "copy":
            try:
                code = self._code_blocks[int(url.path())]
            except (ValueError, IndexError):
                return
            QGuiApplication.clipboard().setText(code)
            self.code_copied.emit(code)
        elif scheme == "retry":
            self.retry_requested.emit()
        elif scheme == "attachment":
            if (attachment := self._attachments.get(url.path())) is not None:
                self.attachment_open_requested.emit(attachment)
        elif scheme == "turn":
            action, _, place = url.path().partition(":")
            if action in TURN_ACTIONS and place.isdigit():
                self.turn_action_requested.emit(action, int(place))
        elif scheme in ("thinking", "json") and url.path().isdigit():
            if scheme == "thinking":
                self._moved(*self._extras.toggle(int(url.path())))
            else:
                for at, delta in self._extras.toggle_json(int(url.path()), self._insert_markdown):
                    self._moved(at, delta)
        elif scheme == "request":
            try:
                request = self._requests[int(url.path())]
            except (ValueError, IndexError):
                return
            self.code_view_requested.emit(request)
        elif scheme in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)

    def _on_scroll_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow_bottom:
            self.verticalScrollBar().setValue(maximum)

    def _on_scroll_value_changed(self, value: int) -> None:
        self._follow_bottom = value >= self.verticalScrollBar().maximum() - 4
