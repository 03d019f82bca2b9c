"""Text typed by the user or sent by a server, made safe to show.

Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are removed: a
right-to-left override (U+202E) before "exe.txt" shows it as "txt.exe". The marks (LRM, RLM,
ALM) stay: they cannot reverse letters, and right-to-left writing needs them.
"""

from __future__ import annotations

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_REMOVE = dict.fromkeys(map(ord, BIDI_CONTROLS))


def without_bidi_controls(text: str) -> str:
    """`text` without the characters that reorder what follows them on screen."""
    return text.translate(_REMOVE)
