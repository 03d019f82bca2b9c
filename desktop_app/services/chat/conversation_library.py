"""The conversation history as a library: full-text search (SQLite FTS5), pins and tags.

The index is two external-content FTS5 tables: the text is stored once, in `messages` and
`conversations`, and the index holds only its words (a copy of every message would double the
file). A message is indexed once it stops streaming (finished, stopped, failed, or marked
interrupted at the next start): the partial saves made while it arrives touch nothing. The
content table of `message_text` is the view of exactly those messages, so FTS5's own `rebuild`
and `integrity-check` agree with what the triggers index. The triggers run in the write's own
transaction, so no crash can leave the index behind the messages; and an external-content index
forgets a row only given the text it indexed, which the triggers pass (the row's old values).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from desktop_app.domain.conversations import Conversation
from desktop_app.domain.search import MATCH_END, MATCH_START, SearchHit, SearchQuery, match_expression
from desktop_app.services.chat.conversation_rows import CONVERSATION_SELECT, conversation_from

_INDEXED = "role IN ('user', 'assistant') AND status != 'streaming'"
_NEW_INDEXED = "new.role IN ('user', 'assistant') AND new.status != 'streaming'"
_OLD_INDEXED = "old.role IN ('user', 'assistant') AND old.status != 'streaming'"
_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2'"
_FORGET_MESSAGE = (
    "INSERT INTO message_text (message_text, rowid, content, reasoning)"
    " SELECT 'delete', old.id, old.content, old.reasoning WHERE " + _OLD_INDEXED
)
_FORGET_TITLE = "INSERT INTO title_text (title_text, rowid, title) VALUES ('delete', old.id, old.title)"

# Schema 4 -> 5: pins, tags and the search index (built here from what an older build wrote).
MIGRATION: tuple[str, ...] = (
    "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX conversations_by_pin ON conversations (pinned DESC, updated_at DESC, id DESC)",
    """
    CREATE TABLE tags (
        conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        tag              TEXT    NOT NULL COLLATE NOCASE,
        PRIMARY KEY (conversation_id, tag)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX tags_by_name ON tags (tag, conversation_id)",
    # The has-errors filter: a lookup per hit, not a walk through the conversation's messages.
    "CREATE INDEX messages_failed ON messages (conversation_id) WHERE status = 'failed'",
    f"CREATE VIEW searchable_messages AS SELECT id, content, reasoning FROM messages WHERE {_INDEXED}",
    "CREATE VIRTUAL TABLE message_text USING fts5"
    f" (content, reasoning, content = 'searchable_messages', content_rowid = 'id', {_TOKENIZER})",
    f"CREATE VIRTUAL TABLE title_text USING fts5 (title, content = 'conversations', content_rowid = 'id', {_TOKENIZER})",
    "INSERT INTO message_text (message_text) VALUES ('rebuild')",
    "INSERT INTO title_text (title_text) VALUES ('rebuild')",
    f"""
    CREATE TRIGGER message_text_added AFTER INSERT ON messages WHEN {_NEW_INDEXED}
    BEGIN
        INSERT INTO message_text (rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
    END
    """,
    # The partial saves of a streaming reply (streaming before and after) leave the index alone.
    f"""
    CREATE TRIGGER message_text_changed AFTER UPDATE OF content, reasoning, status, role ON messages
    WHEN old.status != 'streaming' OR new.status != 'streaming'
    BEGIN
        {_FORGET_MESSAGE};
        INSERT INTO message_text (rowid, content, reasoning) SELECT new.id, new.content, new.reasoning
        WHERE {_NEW_INDEXED};
    END
    """,
    # Also run for the messages a deleted message or conversation takes with it (ON DELETE CASCADE).
    f"CREATE TRIGGER message_text_deleted AFTER DELETE ON messages BEGIN {_FORGET_MESSAGE}; END",
    "CREATE TRIGGER title_text_added AFTER INSERT ON conversations BEGIN"
    " INSERT INTO title_text (rowid, title) VALUES (new.id, new.title); END",
    "CREATE TRIGGER title_text_changed AFTER UPDATE OF title ON conversations BEGIN"
    f" {_FORGET_TITLE}; INSERT INTO title_text (rowid, title) VALUES (new.id, new.title); END",
    f"CREATE TRIGGER title_text_deleted AFTER DELETE ON conversations BEGIN {_FORGET_TITLE}; END",
)

SNIPPET_WORDS = 14
_MARKS = f"'{MATCH_START}', '{MATCH_END}'"
# The model and account a message hit is filed under: the reply's own, else its conversation's.
_HIT_MODEL = "CASE WHEN m.model != '' THEN m.model ELSE c.model END"
_HIT_ACCOUNT = "CASE WHEN m.account_id != '' THEN m.account_id ELSE c.account_id END"


def _filters(query: SearchQuery, *, model: str, account: str, when: str) -> tuple[str, list[Any]]:
    """SQL conditions (each starting with AND) for the query's filters, and their arguments."""
    sql: list[str] = []
    args: list[Any] = []
    if query.model:
        sql.append(f"AND {model} = ?")
        args.append(query.model)
    if query.account_id:
        sql.append(f"AND {account} = ?")
        args.append(query.account_id)
    if query.since is not None:
        sql.append(f"AND {when} >= ?")
        args.append(query.since)
    if query.until is not None:
        sql.append(f"AND {when} <= ?")
        args.append(query.until)
    if query.pinned:
        sql.append("AND c.pinned = 1")
    if query.has_errors:
        sql.append("AND EXISTS (SELECT 1 FROM messages AS e WHERE e.conversation_id = c.id AND e.status = 'failed')")
    if query.tag:
        sql.append("AND EXISTS (SELECT 1 FROM tags AS t WHERE t.conversation_id = c.id AND t.tag = ?)")
        args.append(query.tag)
    return " ".join(sql), args


def listing_statement(query: SearchQuery, limit: int, offset: int) -> tuple[str, list[Any]]:
    """Filters without words: the conversations they keep, as the list orders them."""
    where, args = _filters(query, model="c.model", account="c.account_id", when="c.updated_at")
    return (
        "SELECT c.id, NULL, c.title, c.title, c.updated_at, c.model, c.account_id FROM conversations AS c"
        f" WHERE 1 {where} ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )


def title_statement(query: SearchQuery, expression: str, *, count: bool = False) -> tuple[str, list[Any]]:
    """Conversations whose title matches, newest first (`count`: how many), then LIMIT ? OFFSET ?."""
    where, args = _filters(query, model="c.model", account="c.account_id", when="c.updated_at")
    columns = (
        "COUNT(*)"
        if count
        else f"c.id, NULL, c.title, highlight(title_text, 0, {_MARKS}), c.updated_at, c.model, c.account_id"
    )
    order = "" if count else " ORDER BY title_text.rowid DESC LIMIT ? OFFSET ?"
    return (
        f"SELECT {columns} FROM title_text JOIN conversations AS c ON c.id = title_text.rowid"
        f" WHERE title_text MATCH ? {where}{order}",
        [expression, *args],
    )


def message_statement(query: SearchQuery, expression: str) -> tuple[str, list[Any]]:
    """Messages that match, newest first, then LIMIT ? OFFSET ?."""
    where, args = _filters(query, model=_HIT_MODEL, account=_HIT_ACCOUNT, when="m.created_at")
    text = expression if query.reasoning else f"{{content}} : ({expression})"
    return (
        f"SELECT c.id, m.id, c.title, snippet(message_text, -1, {_MARKS}, '…', {SNIPPET_WORDS}), m.created_at,"
        f" {_HIT_MODEL}, {_HIT_ACCOUNT} FROM message_text"
        " JOIN messages AS m ON m.id = message_text.rowid JOIN conversations AS c ON c.id = m.conversation_id"
        f" WHERE message_text MATCH ? {where} ORDER BY message_text.rowid DESC LIMIT ? OFFSET ?",
        [text, *args],
    )


def list_key(conversation: Conversation) -> tuple[int, float, int]:
    """Where a conversation sorts in the list (larger first)."""
    return int(conversation.pinned), conversation.updated_at, conversation.id


class LibraryMixin:
    """ConversationStore's search, pins and tags (every statement on the store's worker)."""

    if TYPE_CHECKING:  # SqliteStore's
        _conn: sqlite3.Connection

        async def _read(self, fn: Any, *args: Any) -> Any: ...
        async def _write(self, fn: Any, *args: Any) -> Any: ...

    async def search(self, query: SearchQuery, *, limit: int = 50, offset: int = 0) -> list[SearchHit]:
        """One page of what `query` finds; [] for an empty query."""
        if query.empty:
            return []
        return await self._read(self._search, query, limit, offset)

    async def conversation_page(
        self, *, after: tuple[int, float, int] | None = None, limit: int = 100, through_id: int | None = None
    ) -> list[Conversation]:
        """Conversations in the list's order (the pinned first, then the most recently active), from
        just after the key `after` (see `list_key`): `limit` of them, and (`through_id`) none past that
        one. A keyset read on the index conversations_by_pin: a page costs its own rows wherever it starts."""
        return await self._read(self._conversation_page, after, limit, through_id)

    async def match_ids(self, conversation_id: int, text: str, *, reasoning: bool = False) -> list[int]:
        """The ids of the conversation's messages that `text` finds, oldest first."""
        return await self._read(self._match_ids, conversation_id, text, reasoning)

    async def set_pinned(self, conversation_id: int, pinned: bool) -> bool:
        """Pinned conversations come first in the list; pinning is not activity."""
        return await self._write(self._set_pinned, conversation_id, pinned)

    async def set_tags(self, conversation_id: int, tags: list[str]) -> tuple[str, ...]:
        """Replace the conversation's tags (trimmed, duplicates dropped whatever their case); returns them."""
        return await self._write(self._set_tags, conversation_id, tags)

    async def search_choices(self) -> tuple[list[str], list[str], list[str]]:
        """What the filters can offer: the models, accounts and tags in use, sorted."""
        return await self._read(self._search_choices)

    # --- worker-side -----------------------------------------------------------------------------

    def _search(self, query: SearchQuery, limit: int, offset: int) -> list[SearchHit]:
        # Titles first, then messages, each newest first. Two statements, not one UNION: each
        # is walked in the index's own rowid order and stops at its page, so a page costs its
        # own rows (and snippets), not a sort of every match of a common word.
        conn = self._conn
        expression = match_expression(query.text)
        if expression is None:
            sql, args = listing_statement(query, limit, offset)
            return [SearchHit(*row) for row in conn.execute(sql, args)]
        sql, args = title_statement(query, expression)
        rows = conn.execute(sql, [*args, limit, offset]).fetchall()
        if len(rows) == limit:
            return [SearchHit(*row) for row in rows]
        if rows:
            titles = offset + len(rows)
        else:  # this page starts past the titles: how many were there?
            sql, args = title_statement(query, expression, count=True)
            titles = conn.execute(sql, args).fetchone()[0]
        sql, args = message_statement(query, expression)
        rows += conn.execute(sql, [*args, limit - len(rows), max(0, offset - titles)]).fetchall()
        return [SearchHit(*row) for row in rows]

    def _conversation_page(
        self, after: tuple[int, float, int] | None, limit: int, through_id: int | None
    ) -> list[Conversation]:
        where: list[str] = ["1"]
        args: list[Any] = []
        if after is not None:
            where.append("(pinned, updated_at, id) < (?, ?, ?)")
            args.extend(after)
        if through_id is not None:
            where.append("(pinned, updated_at, id) >= (SELECT pinned, updated_at, id FROM conversations WHERE id = ?)")
            args.append(through_id)
        rows = self._conn.execute(
            f"SELECT {CONVERSATION_SELECT} FROM conversations WHERE {' AND '.join(where)}"
            " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ?",
            [*args, limit],
        )
        return [conversation_from(row) for row in rows]

    def _match_ids(self, conversation_id: int, text: str, reasoning: bool) -> list[int]:
        expression = match_expression(text)
        if expression is None:
            return []
        rows = self._conn.execute(
            "SELECT m.id FROM message_text JOIN messages AS m ON m.id = message_text.rowid"
            " WHERE message_text MATCH ? AND m.conversation_id = ? ORDER BY m.id",
            (expression if reasoning else f"{{content}} : ({expression})", conversation_id),
        )
        return [row[0] for row in rows]

    def _set_pinned(self, conversation_id: int, pinned: bool) -> bool:
        cursor = self._conn.execute("UPDATE conversations SET pinned = ? WHERE id = ?", (int(pinned), conversation_id))
        return cursor.rowcount > 0

    def _set_tags(self, conversation_id: int, tags: list[str]) -> tuple[str, ...]:
        kept: dict[str, str] = {}
        for tag in tags:
            if (tag := " ".join(tag.split())) and tag.casefold() not in kept:
                kept[tag.casefold()] = tag
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone():
                raise KeyError(f"there is no conversation {conversation_id}")
            conn.execute("DELETE FROM tags WHERE conversation_id = ?", (conversation_id,))
            conn.executemany(
                "INSERT INTO tags (conversation_id, tag) VALUES (?, ?)", [(conversation_id, t) for t in kept.values()]
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return tuple(sorted(kept.values(), key=str.casefold))

    def _search_choices(self) -> tuple[list[str], list[str], list[str]]:
        conn = self._conn
        models = [r[0] for r in conn.execute("SELECT DISTINCT model FROM conversations WHERE model != '' ORDER BY 1")]
        accounts = [
            r[0]
            for r in conn.execute("SELECT DISTINCT account_id FROM conversations WHERE account_id != '' ORDER BY 1")
        ]
        tags = [r[0] for r in conn.execute("SELECT DISTINCT tag FROM tags ORDER BY 1")]
        return models, accounts, tags
