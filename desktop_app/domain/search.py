"""Searching the conversation history: what the user asks for, what is found, and the FTS5 query."""

from __future__ import annotations

import re
from dataclasses import dataclass

# snippet()/highlight() wrap each match in these (control characters a message never shows), so
# the UI can escape the text for rich text first and only then mark the matches.
MATCH_START = "\x02"
MATCH_END = "\x03"

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """The search field's text and the filters; an empty text with filters lists what they keep."""

    text: str = ""
    reasoning: bool = False  # search the replies' reasoning too
    model: str = ""
    account_id: str = ""
    since: float | None = None  # unix times, inclusive
    until: float | None = None
    has_errors: bool = False
    pinned: bool = False
    tag: str = ""

    @property
    def filtered(self) -> bool:
        return bool(self.model or self.account_id or self.since is not None or self.until is not None) or bool(
            self.has_errors or self.pinned or self.tag
        )

    @property
    def empty(self) -> bool:
        return not words(self.text) and not self.filtered


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A conversation whose title matched (message_id None) or one of its messages."""

    conversation_id: int
    message_id: int | None
    title: str
    snippet: str  # matches between MATCH_START and MATCH_END
    when: float  # the message's time, or the conversation's last activity
    model: str
    account_id: str


def words(text: str) -> list[str]:
    """The words searched for: punctuation and FTS5 operators typed by the user are not syntax."""
    return _WORD.findall(text)


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression finding every word, the last one as a prefix (results as you type)."""
    found = words(text)
    if not found:
        return None
    return " ".join(f'"{w}"' for w in found[:-1]) + (" " if len(found) > 1 else "") + f'"{found[-1]}"*'
