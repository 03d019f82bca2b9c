"""Next/previous match in the transcript, for a conversation opened from a search hit."""

from __future__ import annotations

import functools
import re
import unicodedata

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QPalette, QTextCursor, QTextDocument
from PySide6.QtWidgets import QHBoxLayout, QLabel, QTextEdit, QToolButton, QWidget

from desktop_app.domain.search import words


def _base(text: str) -> str:
    """`text` without its diacritics, as the index's tokenizer (unicode61, remove_diacritics 2) sees it."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


@functools.cache
def _accented() -> dict[str, str]:
    """Base letter -> the letters that are it with diacritics (Latin, Greek and Cyrillic blocks)."""
    table: dict[str, str] = {}
    for code in range(0x00C0, 0x2000):
        char = chr(code)
        base = _base(char)
        if len(base) == 1 and base != char and base.isalpha():
            table[base.lower()] = table.get(base.lower(), "") + char
    return table


def _folded(word: str) -> str:
    """A pattern matching `word` with or without diacritics on any of its letters."""
    accented = _accented()
    parts = []
    for char in _base(word):
        variants = accented.get(char.lower(), "")
        parts.append(f"[{re.escape(char)}{variants}]" if variants else re.escape(char))
    return "".join(parts)


def pattern_of(text: str) -> str:
    """What the transcript is searched for: any of the words, each at a word start, the last as a prefix,
    with or without diacritics (as the index matched them: "cafe" finds "café", and "café" "cafe")."""
    found = words(text)
    if not found:
        return ""
    *whole, last = (_folded(w) for w in found)
    parts = [rf"\b{w}\b" for w in whole] + [rf"\b{last}\w*"]
    return "|".join(parts)


class FindBar(QWidget):
    """“3 of 7” with Previous and Next; every match is marked, the current one selected."""

    closed = Signal()

    def __init__(self, *, view: QTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("findBar")
        self._view = view
        self._matches: list[tuple[int, int]] = []  # (start, end) in the document
        self._current = -1
        self.label = QLabel()
        self.previous_button = QToolButton(text="Previous")
        self.next_button = QToolButton(text="Next")
        self.close_button = QToolButton(text="Close")
        self.previous_button.setToolTip("The previous match (Shift+F3)")
        self.next_button.setToolTip("The next match (F3)")
        self.previous_button.setShortcut("Shift+F3")
        self.next_button.setShortcut("F3")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.previous_button)
        layout.addWidget(self.next_button)
        layout.addWidget(self.close_button)
        self.previous_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.close_button.clicked.connect(self.dismiss)
        self.setVisible(False)

    @property
    def count(self) -> int:
        return len(self._matches)

    @property
    def current(self) -> int:
        """The current match, from 0 (-1: none)."""
        return self._current

    def selected_text(self) -> str:
        return self._view.textCursor().selectedText()

    def find(self, text: str, *, at: int = 0) -> None:
        """Mark every match of `text` in the transcript and go to match `at` (counted from 0)."""
        self._matches = []
        pattern = pattern_of(text)
        if pattern:
            options = QRegularExpression.PatternOption
            # Unicode properties: without them \w and \b know ASCII letters only ("Straße", "café").
            expression = QRegularExpression(pattern, options.CaseInsensitiveOption | options.UseUnicodePropertiesOption)
            document = self._view.document()
            cursor = document.find(expression, 0)
            while not cursor.isNull() and cursor.hasSelection():
                self._matches.append((cursor.selectionStart(), cursor.selectionEnd()))
                cursor = document.find(expression, cursor.selectionEnd(), QTextDocument.FindFlag(0))
        self.setVisible(True)
        self._go(min(at, len(self._matches) - 1))

    def next(self) -> None:
        if self._matches:
            self._go((self._current + 1) % len(self._matches))

    def previous(self) -> None:
        if self._matches:
            self._go((self._current - 1) % len(self._matches))

    def dismiss(self) -> None:
        self._matches, self._current = [], -1
        self._view.setExtraSelections([])
        self.setVisible(False)
        self.closed.emit()

    def _go(self, place: int) -> None:
        self._current = place
        self.previous_button.setEnabled(len(self._matches) > 1)
        self.next_button.setEnabled(len(self._matches) > 1)
        if place < 0:
            self.label.setText("No match in the branch shown")
            self._view.setExtraSelections([])
            return
        self.label.setText(f"Match {place + 1} of {len(self._matches)}")
        palette = self._view.palette()
        marks = []
        for start, end in self._matches:
            selection = QTextEdit.ExtraSelection()
            selection.cursor = self._cursor(start, end)  # type: ignore[attr-defined]
            colour = palette.color(QPalette.ColorRole.Highlight)
            colour.setAlpha(70)
            selection.format.setBackground(colour)  # type: ignore[attr-defined]
            marks.append(selection)
        self._view.setExtraSelections(marks)
        self._view.setTextCursor(self._cursor(*self._matches[place]))
        self._view.ensureCursorVisible()

    def _cursor(self, start: int, end: int) -> QTextCursor:
        cursor = QTextCursor(self._view.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        return cursor
