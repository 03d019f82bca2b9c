"""Giving a transcript already shown the colours of a new theme."""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat, QTextTable

from desktop_app.ui.theme import Colours

_KEEP = QTextCursor.MoveMode.KeepAnchor


def recolour_document(document: QTextDocument, old: Colours, new: Colours) -> None:
    """Give what is already shown the new theme's colours: user blocks, links, errors, notes.

    Code blocks keep the highlighting style they were drawn with (its own background too).
    """
    swap = {
        QColor(getattr(old, name)).rgb(): QColor(getattr(new, name))
        for name in ("error", "ok", "muted", "code_background")
    }
    frames = [document.rootFrame()]
    while frames:
        frame = frames.pop()
        frames.extend(frame.childFrames())
        if isinstance(frame, QTextTable):
            table = frame.format()
            if table.borderBrush().color() == QColor(old.table_border):
                table.setBorderBrush(QColor(new.table_border))
                frame.setFormat(table)
        elif frame.frameFormat().background().color() == QColor(old.user_block):
            frame_format = frame.frameFormat()
            frame_format.setBackground(QColor(new.user_block))
            frame.setFrameFormat(frame_format)
    changes: list[tuple[int, int, QTextCharFormat]] = []
    block = document.begin()
    while block.isValid():
        fragments = block.begin()
        while not fragments.atEnd():
            fragment = fragments.fragment()
            current = fragment.charFormat()
            change = QTextCharFormat()
            if current.isAnchor() and current.anchorHref():
                change.setForeground(QColor(new.link))
            elif current.hasProperty(QTextFormat.Property.ForegroundBrush):
                colour = swap.get(current.foreground().color().rgb())
                if colour is not None:
                    change.setForeground(colour)
            if current.hasProperty(QTextFormat.Property.BackgroundBrush):
                colour = swap.get(current.background().color().rgb())
                if colour is not None:
                    change.setBackground(colour)
            if change.propertyCount():
                changes.append((fragment.position(), fragment.position() + fragment.length(), change))
            fragments += 1
        block = block.next()
    cursor = QTextCursor(document)
    cursor.beginEditBlock()
    for start, end, change in changes:
        cursor.setPosition(start)
        cursor.setPosition(end, _KEEP)
        cursor.mergeCharFormat(change)
    cursor.endEditBlock()
