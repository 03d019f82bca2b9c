"""What a transcript shows around a reply's answer: its reasoning folded under a "Thinking ▸" link,
and, for a reply asked for as JSON, the check of that JSON and a pretty/raw view of it.

Each is kept by its place in the transcript's document. A change here moves the places kept here
and returns (where, by how much) the document changed, for the transcript to move its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument

from desktop_app.domain.structured_output import Verdict, pretty_json, reply_verdict

_KEEP = QTextCursor.MoveMode.KeepAnchor


@dataclass(slots=True)
class _Fold:
    link_start: int  # where the "Thinking" link's text starts
    link_end: int  # where it ends: the reasoning text, when shown, follows in a block of its own
    parts: list[str]
    expanded: bool
    link: QTextCharFormat
    summary: str = ""  # "1,234 tokens, 3.2 s"

    @property
    def shown_end(self) -> int:
        """The end of the shown reasoning (the link's end while folded)."""
        return self.link_end + (1 + sum(map(len, self.parts)) if self.expanded and any(self.parts) else 0)


@dataclass(slots=True)
class _JsonBody:
    start: int
    end: int
    raw: str
    pretty: bool = False
    link_start: int = 0  # the footer's "Pretty view" / "Raw view" link
    link_end: int = 0
    link: QTextCharFormat | None = None


def json_link_label(pretty_shown: bool) -> str:
    return "Raw view" if pretty_shown else "Pretty view"


def fold_label(summary: str, expanded: bool) -> str:
    return f"Thinking{f' ({summary})' if summary else ''} {'▾' if expanded else '▸'}"


class ReplyExtras:
    """The reasoning folds and JSON views of one transcript's replies."""

    def __init__(self, document: QTextDocument) -> None:
        self._document = document
        self._folds: list[_Fold] = []
        self._bodies: list[_JsonBody] = []
        self._reasoning_format, self._reasoning_block = QTextCharFormat(), QTextBlockFormat()
        self._text_format = QTextCharFormat()

    def clear(self) -> None:
        self._folds.clear()
        self._bodies.clear()

    def counts(self) -> tuple[int, int]:
        """How many folds and JSON views there are (for `shift_older`)."""
        return len(self._folds), len(self._bodies)

    def shift_older(self, counts: tuple[int, int], at: int, delta: int) -> None:
        """Move only the first `counts` (folds, JSON views): text went in before them, with its own."""
        folds, bodies = self._folds, self._bodies
        self._folds, self._bodies = folds[: counts[0]], bodies[: counts[1]]
        try:
            self.shift(at, delta)
        finally:
            self._folds, self._bodies = folds, bodies

    def shift(self, at: int, delta: int, *, skip: object = None) -> None:
        """Text was inserted (delta > 0) or removed at `at`: move what lies from there on."""
        if not delta:
            return
        for fold in self._folds:
            if fold is skip:
                continue
            if fold.link_start >= at:
                fold.link_start += delta
            if fold.link_end >= at:
                fold.link_end += delta
        for body in self._bodies:
            if body is skip:
                continue
            if body.start >= at:
                body.start += delta
            if body.end >= at:
                body.end += delta
            if body.link_start >= at:
                body.link_start += delta
                body.link_end += delta

    # -- reasoning --------------------------------------------------------------------------

    def add_fold(
        self, cursor: QTextCursor, text: str, *, expanded: bool, link: QTextCharFormat, summary: str = ""
    ) -> int:
        """Insert the link's block at the cursor, and the text in a block of its own when expanded;
        returns the fold's number. The caller moves what follows by what was inserted."""
        number = len(self._folds)
        link = QTextCharFormat(link)
        link.setAnchor(True)
        link.setAnchorHref(f"thinking:{number}")
        cursor.insertBlock(QTextBlockFormat(), link)
        start = cursor.position()
        cursor.insertText(fold_label(summary, expanded), link)
        fold = _Fold(start, cursor.position(), [], False, link, summary)
        self._folds.append(fold)
        fold.parts.append(text)
        if expanded:
            self.set_expanded(number, True)
        return number

    def append_to_fold(self, number: int, text: str) -> int:
        """More reasoning for fold `number`, shown at once when expanded; returns how many characters
        went in at the end of the shown reasoning (the caller moves what follows)."""
        fold = self._folds[number]
        if not fold.expanded:
            fold.parts.append(text)
            return 0
        if not any(fold.parts):  # expanded with nothing to show yet: the text's block comes now
            fold.parts = [text]
            self._insert_reasoning(fold.link_end, text)
            return 1 + len(text)
        at = fold.shown_end
        fold.parts.append(text)
        self._cursor(at).insertText(text, self._reasoning_format)
        return len(text)

    def set_expanded(self, number: int, expanded: bool) -> tuple[int, int]:
        """Show or hide fold `number`'s reasoning; returns (where, by how much) the document changed:
        what lay from there on has moved by that much."""
        fold = self._folds[number]
        before = fold.shown_end
        if fold.expanded and not expanded and any(fold.parts):
            cursor = self._cursor(fold.link_end)
            cursor.setPosition(fold.shown_end, _KEEP)
            cursor.removeSelectedText()
        fold.parts = ["".join(fold.parts)]
        self._relabel(fold, expanded)
        if expanded and not fold.expanded and fold.parts[0]:
            self._insert_reasoning(fold.link_end, fold.parts[0])
        fold.expanded = expanded
        self.shift(before, fold.shown_end - before, skip=fold)
        return before, fold.shown_end - before

    def toggle(self, number: int) -> tuple[int, int]:
        if not 0 <= number < len(self._folds):  # a link from before the transcript was cleared
            return 0, 0
        return self.set_expanded(number, not self._folds[number].expanded)

    def set_summary(self, number: int, summary: str) -> tuple[int, int]:
        """Name the tokens and the time in fold `number`'s link; returns (where, by how much) it changed."""
        fold = self._folds[number]
        before = fold.link_end
        fold.summary = summary
        self._relabel(fold, fold.expanded)
        self.shift(before, fold.link_end - before, skip=fold)
        return before, fold.link_end - before

    def _relabel(self, fold: _Fold, expanded: bool) -> None:
        cursor = self._cursor(fold.link_start)
        cursor.setPosition(fold.link_end, _KEEP)
        label = fold_label(fold.summary, expanded)
        cursor.insertText(label, fold.link)
        fold.link_end = fold.link_start + len(label)

    def _insert_reasoning(self, at: int, text: str) -> None:
        cursor = self._cursor(at)
        cursor.insertBlock(self._reasoning_block, self._reasoning_format)
        cursor.insertText(text, self._reasoning_format)

    # -- JSON -------------------------------------------------------------------------------

    def add_json(self, response_format: object, raw: str, start: int, end: int) -> tuple[Verdict, int] | None:
        """Check a reply asked for as JSON (its body shown from `start` to `end`); returns the verdict
        and the number its Pretty/Raw link names, or None when it asked for no JSON."""
        verdict = reply_verdict(response_format, raw)
        if verdict is None:
            return None
        self._bodies.append(_JsonBody(start, end, raw))
        return verdict, len(self._bodies) - 1

    def move_last_fold(self, since: int, by: int) -> None:
        """The live reply (from `since`) moved into the history: its fold moves with it."""
        if self._folds and self._folds[-1].link_start >= since:
            fold = self._folds[-1]
            fold.link_start += by
            fold.link_end += by

    def toggle_json(self, number: int, insert_markdown: Callable[[int, str], None]) -> list[tuple[int, int]]:
        """Show the reply's JSON indented in a code block, or again as received; returns where and by
        how much the document changed, in order."""
        if not 0 <= number < len(self._bodies):
            return []
        body = self._bodies[number]
        pretty = None if body.pretty else pretty_json(body.raw)
        if not body.pretty and pretty is None:
            return []  # not JSON: there is nothing to indent
        before, old_end = self._document.characterCount(), body.end
        cursor = self._cursor(body.start - 1)  # from the end of the block before: the body's blocks go whole
        cursor.setPosition(body.end, _KEEP)
        cursor.removeSelectedText()
        if pretty is not None:
            insert_markdown(body.start - 1, f"```json\n{pretty}\n```")
        else:
            cursor.insertBlock(QTextBlockFormat(), self._text_format)
            cursor.insertText(body.raw.replace("\r", ""), self._text_format)
        delta = self._document.characterCount() - before
        body.end += delta
        body.pretty = pretty is not None
        self.shift(old_end, delta, skip=body)
        changes = [(old_end, delta)]
        if body.link is not None:  # the footer's link follows the body: it says what a click shows now
            body.link_start += delta
            body.link_end += delta
            cursor = self._cursor(body.link_start)
            cursor.setPosition(body.link_end, _KEEP)
            label = json_link_label(body.pretty)
            cursor.insertText(label, body.link)
            old_link_end, body.link_end = body.link_end, body.link_start + len(label)
            self.shift(old_link_end, body.link_end - old_link_end, skip=body)
            changes.append((old_link_end, body.link_end - old_link_end))
        return changes

    def set_json_link(self, number: int, start: int, end: int, link: QTextCharFormat) -> None:
        body = self._bodies[number]
        body.link_start, body.link_end, body.link = start, end, link

    # -- formats (set by the transcript from its theme) -------------------------------------

    def set_formats(self, *, reasoning: QTextCharFormat, block: QTextBlockFormat, text: QTextCharFormat) -> None:
        self._reasoning_format, self._reasoning_block, self._text_format = reasoning, block, text

    def _cursor(self, position: int) -> QTextCursor:
        cursor = QTextCursor(self._document)
        cursor.setPosition(position)
        return cursor
