"""Conversations and their messages in SQLite, every statement run on one worker thread.

The connection is made, used and closed only on that thread (sqlite3's own same-thread check
stays on to prove it), so the event loop never waits on the disk and statements never interleave.
Every write commits at once; in WAL mode with synchronous=NORMAL that costs no fsync per write,
and a crash of the app loses nothing that was written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.conversations import Conversation, InterruptedReply, MessageStatus, StoredMessage
from desktop_app.domain.sent_requests import SentRequest, StoredMessages
from desktop_app.services.sqlite_store import SqliteStore, StoreClosed

__all__ = ["SCHEMA_VERSION", "ConversationStore", "StoreClosed"]  # StoreClosed: imported from here

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# _MIGRATIONS[n] takes a database at user_version n to n + 1.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: (
        """
        CREATE TABLE conversations (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            title       TEXT    NOT NULL,
            account_id  TEXT    NOT NULL DEFAULT '',
            model       TEXT    NOT NULL DEFAULT '',
            params      TEXT    NOT NULL DEFAULT '{}',
            created_at  REAL    NOT NULL,
            updated_at  REAL    NOT NULL
        )
        """,
        "CREATE INDEX conversations_by_recency ON conversations (updated_at DESC, id DESC)",
        # AUTOINCREMENT: ids are never reused, so a late write from a cancelled reply can never
        # land on the message that replaced it after a Retry.
        """
        CREATE TABLE messages (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            role             TEXT    NOT NULL,
            content          TEXT    NOT NULL DEFAULT '',
            reasoning        TEXT    NOT NULL DEFAULT '',
            status           TEXT    NOT NULL DEFAULT 'complete',
            metrics          TEXT    NOT NULL DEFAULT '{}',
            error            TEXT    NOT NULL DEFAULT '',
            account_id       TEXT    NOT NULL DEFAULT '',
            model            TEXT    NOT NULL DEFAULT '',
            created_at       REAL    NOT NULL
        )
        """,
        "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
    ),
    # The request that produced a reply (JSON of a SentRequest, its stored messages referred to by id;
    # '' for replies from before).
    1: ("ALTER TABLE messages ADD COLUMN request TEXT NOT NULL DEFAULT ''",),
}

_CONVERSATION_COLUMNS = "id, title, account_id, model, params, updated_at"
_MESSAGE_COLUMNS = "id, conversation_id, role, content, status, reasoning, metrics, error, account_id, model, request"


_RECOVER_CONVERSATION_COLUMNS = "id, title, account_id, model, params, created_at, updated_at"
_RECOVER_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, reasoning, status, metrics, error, account_id, model, created_at"
)
_RECOVER_CHUNK = 64


def _recover_message_columns(conn: sqlite3.Connection) -> str:
    """The message columns to copy from a damaged file, which may predate the `request` column."""
    try:
        conn.execute("SELECT request FROM messages LIMIT 0")
    except sqlite3.DatabaseError:
        return _RECOVER_MESSAGE_COLUMNS
    return f"{_RECOVER_MESSAGE_COLUMNS}, request"


def _readable_rows(conn: sqlite3.Connection, table: str, columns: str) -> Iterator[tuple[Any, ...]]:
    """Every row of `table` (by id) that SQLite can still read; a damaged chunk is read row by row."""
    last = 0
    for query in (f"SELECT MAX(id) FROM {table}", "SELECT seq FROM sqlite_sequence WHERE name = ?"):
        try:
            row = conn.execute(query, (table,) if "?" in query else ()).fetchone()
        except sqlite3.DatabaseError:
            continue
        last = max(last, (row or (0,))[0] or 0)
    select = f"SELECT {columns} FROM {table}"
    for start in range(0, last, _RECOVER_CHUNK):
        try:
            yield from conn.execute(
                f"{select} WHERE id > ? AND id <= ? ORDER BY id", (start, start + _RECOVER_CHUNK)
            ).fetchall()
            continue
        except sqlite3.DatabaseError:
            pass
        for id_ in range(start + 1, start + _RECOVER_CHUNK + 1):
            try:
                row = conn.execute(f"{select} WHERE id = ?", (id_,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                yield row


class ConversationStore(SqliteStore):
    # A write once asked for happens even if its caller is cancelled (Stop, closing a pane):
    # see `SqliteStore._write`.
    NAME = "conversation"
    DESCRIPTION = "conversation history"
    SCHEMA_VERSION = SCHEMA_VERSION
    MIGRATIONS = _MIGRATIONS

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._last_stamp = 0.0  # touched only on the worker thread

    # --- conversations ---------------------------------------------------------------------------

    async def create_conversation(
        self, *, title: str, account_id: str = "", model: str = "", params: ChatParams = ChatParams()
    ) -> Conversation:
        return await self._write(self._create_conversation, title, account_id, model, params)

    async def list_conversations(self) -> list[Conversation]:
        """All conversations, the most recently active first."""
        return await self._read(self._list_conversations)

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        return await self._read(self._get_conversation, conversation_id)

    async def rename_conversation(self, conversation_id: int, title: str) -> bool:
        """Renaming is not activity: the conversation keeps its place in the list."""
        return await self._write(
            self._execute_one, "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
        )

    async def delete_conversation(self, conversation_id: int) -> bool:
        """Delete the conversation and all its messages."""
        return await self._write(self._execute_one, "DELETE FROM conversations WHERE id = ?", (conversation_id,))

    async def update_conversation_settings(
        self, conversation_id: int, *, account_id: str, model: str, params: ChatParams
    ) -> bool:
        return await self._write(
            self._execute_one,
            "UPDATE conversations SET account_id = ?, model = ?, params = ? WHERE id = ?",
            (account_id, model, params.model_dump_json(), conversation_id),
        )

    # --- messages --------------------------------------------------------------------------------

    async def add_message(
        self,
        conversation_id: int,
        *,
        role: str,
        content: str,
        status: MessageStatus = MessageStatus.COMPLETE,
        account_id: str = "",
        model: str = "",
    ) -> StoredMessage:
        """Append a message; KeyError if the conversation does not exist (any more)."""
        return await self._write(self._add_message, conversation_id, role, content, status, account_id, model)

    async def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        reasoning: str | None = None,
        status: MessageStatus | None = None,
        metrics: ReplyMetrics | None = None,
        error: str | None = None,
        request: SentRequest | None = None,
    ) -> bool:
        """Change only the fields given; False when the message no longer exists."""
        changes: dict[str, Any] = {}
        if content is not None:
            changes["content"] = content
        if reasoning is not None:
            changes["reasoning"] = reasoning
        if status is not None:
            changes["status"] = MessageStatus(status).value
        if metrics is not None:
            changes["metrics"] = json.dumps(metrics.to_json())
        if error is not None:
            changes["error"] = error
        if request is not None:
            changes["request"] = request  # encoded on the worker, against the messages stored before it
        return await self._write(self._update_message, message_id, changes)

    async def get_message(self, message_id: int) -> StoredMessage | None:
        return await self._read(self._get_message, message_id)

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The conversation's messages in the order they were added."""
        return await self._read(self._messages, conversation_id)

    async def delete_messages_after(self, conversation_id: int, message_id: int) -> int:
        """Delete the messages that follow `message_id` (for Retry); returns how many went."""
        return await self._write(self._delete_messages_after, conversation_id, message_id)

    async def recover(self) -> tuple[int, int]:
        """Copy what can still be read from the damaged file set aside at open into this database.

        Returns (conversations, messages) recovered. A conversation keeps its id when that id is
        free here; messages whose conversation is unreadable go into a conversation of their own.
        """
        source = self.damaged_copy
        if source is None:
            return 0, 0
        counts = await self._write(self._recover, source)
        self.damaged_copy = None
        return counts

    async def recover_interrupted(self) -> list[InterruptedReply]:
        """At start-up, before any reply streams: replies left `streaming` by a crash become
        `interrupted` (their saved text kept); returns them, oldest first. Running it again finds none."""
        return await self._write(self._recover_interrupted)

    # --- worker-side implementation --------------------------------------------------------------

    def _recover(self, source: Path) -> tuple[int, int]:
        damaged = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
        try:
            conversations = list(_readable_rows(damaged, "conversations", _RECOVER_CONVERSATION_COLUMNS))
            message_columns = _recover_message_columns(damaged)
            messages = list(_readable_rows(damaged, "messages", message_columns))
        finally:
            damaged.close()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            new_ids: dict[int, int] = {}
            for old_id, *rest in conversations:
                new_ids[old_id] = self._insert_keeping_id(
                    conn, "conversations", _RECOVER_CONVERSATION_COLUMNS, old_id, rest
                )
            for old_id, conversation_id, *rest in messages:
                if conversation_id not in new_ids:
                    now = self._now()
                    new_ids[conversation_id] = self._insert_keeping_id(
                        conn,
                        "conversations",
                        _RECOVER_CONVERSATION_COLUMNS,
                        conversation_id,
                        [f"Recovered conversation {conversation_id}", "", "", "{}", now, now],
                    )
                self._insert_keeping_id(conn, "messages", message_columns, old_id, [new_ids[conversation_id], *rest])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._ready(conn)
        log.warning("recovered %d conversations and %d messages from %s", len(conversations), len(messages), source)
        return len(conversations), len(messages)

    @staticmethod
    def _insert_keeping_id(conn: sqlite3.Connection, table: str, columns: str, old_id: int, values: list[Any]) -> int:
        taken = conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (old_id,)).fetchone()
        places = ", ".join("?" * len(columns.split(",")))
        cursor = conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({places})", (None if taken else old_id, *values)
        )
        return _new_id(cursor)

    def _now(self) -> float:
        # Strictly increasing, so "most recently active" ordering holds even within one clock tick.
        self._last_stamp = max(time.time(), self._last_stamp + 1e-6)
        return self._last_stamp

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys=ON")

    def _ready(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT MAX(updated_at) FROM conversations").fetchone()
        self._last_stamp = row[0] or 0.0

    def _execute_one(self, sql: str, args: tuple[Any, ...]) -> bool:
        return self._conn.execute(sql, args).rowcount > 0

    def _create_conversation(self, title: str, account_id: str, model: str, params: ChatParams) -> Conversation:
        now = self._now()
        cursor = self._conn.execute(
            "INSERT INTO conversations (title, account_id, model, params, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (title, account_id, model, params.model_dump_json(), now, now),
        )
        return Conversation(
            id=_new_id(cursor),
            title=title,
            account_id=account_id,
            model=model,
            params=params,
            updated_at=now,
        )

    def _list_conversations(self) -> list[Conversation]:
        rows = self._conn.execute(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations ORDER BY updated_at DESC, id DESC"
        )
        return [_conversation(row) for row in rows]

    def _get_conversation(self, conversation_id: int) -> Conversation | None:
        row = self._conn.execute(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return _conversation(row) if row else None

    def _add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        status: MessageStatus,
        account_id: str,
        model: str,
    ) -> StoredMessage:
        conn = self._conn
        now = self._now()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, status, account_id, model,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, MessageStatus(status).value, account_id, model, now),
            )
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            raise KeyError(f"there is no conversation {conversation_id}") from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return StoredMessage(
            id=_new_id(cursor),
            conversation_id=conversation_id,
            role=role,
            content=content,
            status=MessageStatus(status),
            account_id=account_id,
            model=model,
        )

    def _update_message(self, message_id: int, changes: dict[str, Any]) -> bool:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(request := changes.get("request"), SentRequest):
                changes = {**changes, "request": self._encode_request(message_id, request)}
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)  # fixed column names
                found = (
                    conn.execute(
                        f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), message_id)
                    ).rowcount
                    > 0
                )
            else:
                found = conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is not None
            if found:
                conn.execute(
                    "UPDATE conversations SET updated_at = ?"
                    " WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)",
                    (self._now(), message_id),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return found

    def _encode_request(self, message_id: int, request: SentRequest) -> str:
        """The request's record: the messages stored before this one in its conversation are kept
        as runs of their ids, the rest (the system prompt, text sent other than stored) inline."""
        stored = self._conn.execute(
            "SELECT id, role, content FROM messages"
            " WHERE conversation_id = (SELECT conversation_id FROM messages WHERE id = ?) AND id < ? ORDER BY id",
            (message_id, message_id),
        ).fetchall()
        return json.dumps(request.to_json(stored), ensure_ascii=False)

    def _get_message(self, message_id: int) -> StoredMessage | None:
        row = self._conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        if not row:
            return None
        earlier = self._conn.execute(
            "SELECT id, role, content FROM messages WHERE conversation_id = ? AND id < ?", (row[1], message_id)
        )
        return _message(row, StoredMessages(earlier) if row[-1] else None)

    def _messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ).fetchall()
        stored = StoredMessages((row[0], row[2], row[3]) for row in rows)
        return [_message(row, stored) for row in rows]

    def _recover_interrupted(self) -> list[InterruptedReply]:
        # Not activity: the conversations keep their place in the list.
        rows = self._conn.execute(
            "UPDATE messages SET status = ? WHERE status = ?"
            " RETURNING id, conversation_id, account_id, model, created_at",
            (MessageStatus.INTERRUPTED.value, MessageStatus.STREAMING.value),
        ).fetchall()
        return sorted((InterruptedReply(*row) for row in rows), key=lambda r: r.message_id)

    def _delete_messages_after(self, conversation_id: int, message_id: int) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = conn.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND id > ?", (conversation_id, message_id)
            ).rowcount
            if deleted:
                conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (self._now(), conversation_id))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return deleted


def _new_id(cursor: sqlite3.Cursor) -> int:
    """The id the INSERT just run on `cursor` gave its row (typeshed allows None: no INSERT yet)."""
    row_id = cursor.lastrowid
    if row_id is None:
        raise sqlite3.InterfaceError("the INSERT reported no row id")
    return row_id


def _conversation(row: tuple[Any, ...]) -> Conversation:
    id_, title, account_id, model, params, updated_at = row
    return Conversation(
        id=id_,
        title=title,
        account_id=account_id,
        model=model,
        params=_params(params, id_),
        updated_at=updated_at,
    )


def _params(text: str, conversation_id: int) -> ChatParams:
    try:
        return ChatParams.model_validate_json(text)
    except ValueError:
        # Parameters saved by a build with other limits should not make the conversation vanish.
        log.warning("conversation %s has unreadable parameters; using defaults", conversation_id)
        return ChatParams()


def _message(row: tuple[Any, ...], stored: StoredMessages | None = None) -> StoredMessage:
    id_, conversation_id, role, content, status, reasoning, metrics, error, account_id, model, request = row
    try:
        status = MessageStatus(status)
    except ValueError:
        status = MessageStatus.FAILED
    try:
        reply_metrics = ReplyMetrics.from_json(json.loads(metrics))
    except (ValueError, TypeError):
        reply_metrics = ReplyMetrics()
    try:
        sent = SentRequest.from_json(json.loads(request), stored) if request else None
    except ValueError:
        sent = None
    return StoredMessage(
        id=id_,
        conversation_id=conversation_id,
        role=role,
        content=content,
        status=status,
        reasoning=reasoning,
        metrics=reply_metrics,
        error=error,
        account_id=account_id,
        model=model,
        request=sent,
    )
