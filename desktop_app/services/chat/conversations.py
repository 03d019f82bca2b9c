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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desktop_app.domain.attachments import Attachment
from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.compare import CompareSetup
from desktop_app.domain.conversations import Conversation, InterruptedReply, MessageStatus, StoredMessage
from desktop_app.domain.sent_requests import SentRequest, StoredMessages
from desktop_app.domain.tools import ToolCall
from desktop_app.services.chat import conversation_dump
from desktop_app.services.chat import conversation_library as library
from desktop_app.services.chat.conversation_recovery import copy_readable
from desktop_app.services.chat.conversation_rows import (
    CONVERSATION_SELECT as _CONVERSATION_COLUMNS,
)
from desktop_app.services.chat.conversation_rows import (
    attachments_from,
    attachments_json,
    compare_json,
    conversation_from,
    message_from,
    new_id,
    tool_calls_json,
)
from desktop_app.services.sqlite_store import SqliteStore, StoreClosed

__all__ = ["AT_LEAF", "SCHEMA_VERSION", "ConversationStore", "StoreClosed"]  # StoreClosed: imported from here

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5

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
    # Messages form a tree: regenerated replies and edited messages are versions (siblings) of a
    # turn, and a comparison's columns are lanes. The conversation shows the path to `leaf_id`.
    2: (
        "ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages (id) ON DELETE CASCADE",
        "ALTER TABLE messages ADD COLUMN lane INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN vote INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE conversations ADD COLUMN leaf_id INTEGER",
        "ALTER TABLE conversations ADD COLUMN compare TEXT NOT NULL DEFAULT ''",
        # The files attached to a message: a JSON list of Attachment records ('' for none).
        "ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT ''",
        # Until now a conversation was one line: each message follows the one before it.
        "UPDATE messages SET parent_id = (SELECT MAX(p.id) FROM messages AS p"
        " WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id)",
        "CREATE INDEX messages_by_parent ON messages (parent_id, id)",
    ),
    # Tool calling: an assistant's calls (a JSON list of ToolCall records, '' for none), and the call
    # a `tool` message answers.
    3: (
        "ALTER TABLE messages ADD COLUMN tool_calls TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE messages ADD COLUMN tool_call_id TEXT NOT NULL DEFAULT ''",
    ),
    4: library.MIGRATION,  # pins, tags and the full-text search index
}

_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, status, reasoning, metrics, error, account_id, model, request,"
    " parent_id, lane, vote, attachments, tool_calls, tool_call_id"
)
# The path from a message up to its conversation's first: `path(id, parent)`, seeded with `?`.
_PATH = (
    "WITH RECURSIVE path(id, parent) AS (SELECT id, parent_id FROM messages WHERE id = ?"
    " UNION ALL SELECT m.id, m.parent_id FROM messages AS m JOIN path ON m.id = path.parent)"
)
AT_LEAF = -1  # add_message's default parent: the last message of the branch shown (or of the lane)


class ConversationStore(library.LibraryMixin, SqliteStore):
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
        self,
        *,
        title: str,
        account_id: str = "",
        model: str = "",
        params: ChatParams = ChatParams(),
        compare: CompareSetup | None = None,
    ) -> Conversation:
        return await self._write(self._create_conversation, title, account_id, model, params, compare)

    async def list_conversations(self) -> list[Conversation]:
        """All conversations, the pinned first, then the most recently active."""
        return await self._read(self._list_conversations)

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        return await self._read(self._get_conversation, conversation_id)

    async def rename_conversation(self, conversation_id: int, title: str) -> bool:
        """Renaming is not activity: the conversation keeps its place in the list."""
        return await self._write(
            self._execute_one, "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
        )

    async def attachment_digests(self) -> set[str]:
        """The digests of every file a message still refers to (what the attachments folder must keep)."""
        return await self._read(self._attachment_digests)

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

    async def set_compare(self, conversation_id: int, setup: CompareSetup | None, *, keep: int | None = None) -> bool:
        """Make the conversation a comparison with `setup`, or (None) an ordinary one again: then every
        column's messages join lane 0, so the other columns' replies become versions of their turns,
        and the branch shown ends under `keep` (the reply the user chose)."""
        return await self._write(self._set_compare, conversation_id, setup, keep)

    async def branch(self, message_id: int) -> Conversation:
        """A new conversation holding copies of the path up to `message_id` (its settings too);
        KeyError if the message does not exist."""
        return await self._write(self._branch, message_id)

    async def export_records(self, conversation_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The conversations as ModelDesk JSON records (every branch), in the order given; those
        gone are left out."""
        return await self._read(self._export_records, list(conversation_ids))

    async def import_records(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
        """Add checked ModelDesk JSON records as new conversations, all or none (one transaction);
        (id, messages) of each. Their timestamps are kept."""
        return await self._write(self._import_records, list(records))

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
        parent_id: int | None = AT_LEAF,
        lane: int = 0,
        attachments: tuple[Attachment, ...] = (),
        tool_call_id: str = "",
    ) -> StoredMessage:
        """Add a message after `parent_id` (None: as a first message; by default after the last of
        the branch shown, or of `lane`); a lane-0 message becomes the end of the branch shown.
        `tool_call_id`: a `tool` message's call. KeyError if the conversation (or the parent, in it)
        does not exist (any more)."""
        return await self._write(
            self._add_message,
            conversation_id,
            role,
            content,
            status,
            account_id,
            model,
            parent_id,
            lane,
            attachments,
            tool_call_id,
        )

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
        tool_calls: tuple[ToolCall, ...] | None = None,
    ) -> bool:
        """Change only the fields given; False when the message no longer exists."""
        changes: dict[str, Any] = {}
        if tool_calls is not None:
            changes["tool_calls"] = tool_calls_json(tool_calls)
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

    async def set_vote(self, message_id: int, vote: int) -> bool:
        """Record the user's pick among a compare turn's replies (1) or take it back (0)."""
        return await self._write(self._execute_one, "UPDATE messages SET vote = ? WHERE id = ?", (vote, message_id))

    async def win_counts(self) -> dict[tuple[str, str], int]:
        """How often each (account, model)'s reply was the one picked."""
        return await self._read(self._win_counts)

    async def get_message(self, message_id: int) -> StoredMessage | None:
        return await self._read(self._get_message, message_id)

    async def messages(self, conversation_id: int, *, lane: int = 0) -> list[StoredMessage]:
        """The branch shown, from the first message to its last (lane k: compare column k's, which
        is the path to the newest message of lane 0 or k)."""
        return await self._read(self._messages, conversation_id, lane)

    async def show_version(self, message_id: int) -> int | None:
        """Show the branch through `message_id` (to its newest end); that end's id, None if gone."""
        return await self._write(self._show_version, message_id)

    async def set_leaf(self, conversation_id: int, message_id: int | None) -> bool:
        """Show the branch that ends exactly at `message_id` (None: an empty branch, before any message)."""
        return await self._write(self._set_leaf, conversation_id, message_id)

    async def versions(self, message_id: int) -> list[int]:
        """The ids of the message's versions (itself among them), oldest first; [] if it is gone."""
        return await self._read(self._versions, message_id)

    async def subtree_size(self, message_id: int) -> int:
        """How many messages `delete_message` would delete: it and all that follow it, on every branch."""
        return await self._read(self._subtree_size, message_id)

    async def delete_message(self, message_id: int) -> int:
        """Delete the message and everything that follows it (its whole subtree); returns how many
        went. The branch shown then ends at the newest end of what remains under its parent."""
        return await self._write(self._delete_message, message_id)

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

    def _transaction(self, fn: Any, *args: Any) -> Any:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _recover(self, source: Path) -> tuple[int, int]:
        counts = self._transaction(copy_readable, source, self._now)
        self._ready(self._conn)
        log.warning("recovered %d conversations and %d messages from %s", *counts, source)
        return counts

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

    def _create_conversation(
        self, title: str, account_id: str, model: str, params: ChatParams, compare: CompareSetup | None
    ) -> Conversation:
        now = self._now()
        cursor = self._conn.execute(
            "INSERT INTO conversations (title, account_id, model, params, created_at, updated_at, compare)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (title, account_id, model, params.model_dump_json(), now, now, compare_json(compare)),
        )
        return Conversation(
            id=new_id(cursor),
            title=title,
            account_id=account_id,
            model=model,
            params=params,
            updated_at=now,
            compare=compare,
        )

    def _list_conversations(self) -> list[Conversation]:
        rows = self._conn.execute(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations ORDER BY pinned DESC, updated_at DESC, id DESC"
        )
        return [conversation_from(row) for row in rows]

    def _get_conversation(self, conversation_id: int) -> Conversation | None:
        row = self._conn.execute(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return conversation_from(row) if row else None

    def _set_compare(self, conversation_id: int, setup: CompareSetup | None, keep: int | None) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            found = (
                conn.execute(
                    "UPDATE conversations SET compare = ? WHERE id = ?", (compare_json(setup), conversation_id)
                ).rowcount
                > 0
            )
            if found and setup is None:
                conn.execute("UPDATE messages SET lane = 0 WHERE conversation_id = ? AND lane != 0", (conversation_id,))
                leaf = self._newest_end(conn, keep) if keep is not None else None
                conn.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, conversation_id))
            return found

        return self._transaction(run)

    def _branch(self, message_id: int) -> Conversation:
        def run(conn: sqlite3.Connection) -> Conversation:
            row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise KeyError(f"there is no message {message_id}")
            source = self._get_conversation(row[0])
            assert source is not None  # the message's conversation (a foreign key)
            now = self._now()
            conversation = self._create_conversation(
                f"{source.title} (branch)", source.account_id, source.model, source.params, None
            )
            path = conn.execute(
                f"{_PATH} SELECT {_MESSAGE_COLUMNS}, created_at FROM messages WHERE id IN (SELECT id FROM path)"
                " ORDER BY id",
                (message_id,),
            ).fetchall()
            old_stored = StoredMessages((r[0], r[2], r[3]) for r in path)
            new_stored: list[tuple[int, str, str]] = []
            parent: int | None = None
            for r in path:
                sent = SentRequest.from_json(json.loads(r[10]), old_stored) if r[10] else None
                request = json.dumps(sent.to_json(new_stored), ensure_ascii=False) if sent else ""
                cursor = conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, status, reasoning, metrics, error,"
                    " account_id, model, request, parent_id, attachments, tool_calls, tool_call_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (conversation.id, *r[2:10], request, parent, r[14], r[15], r[16], r[-1]),
                )
                parent = new_id(cursor)
                new_stored.append((parent, r[2], r[3]))
            conn.execute(
                "UPDATE conversations SET leaf_id = ?, updated_at = ? WHERE id = ?", (parent, now, conversation.id)
            )
            return conversation

        return self._transaction(run)

    def _export_records(self, conversation_ids: list[int]) -> list[dict[str, Any]]:
        records = (conversation_dump.dump(self._conn, id_) for id_ in conversation_ids)
        found = [r for r in records if r is not None]
        return [{**r, "id": n} for n, r in enumerate(found, 1)]

    def _import_records(self, records: list[Mapping[str, Any]]) -> list[tuple[int, int]]:
        added = self._transaction(conversation_dump.load, records)
        # A file from a clock ahead of ours: later activity still sorts after it.
        self._last_stamp = max([self._last_stamp, *(r["updated_at"] for r in records)])
        return added

    def _leaf(self, conn: sqlite3.Connection, conversation_id: int, lane: int) -> int | None:
        """The last message of the branch shown (lane 0), or of compare column `lane`'s."""
        if lane:
            row = conn.execute(
                "SELECT MAX(id) FROM messages WHERE conversation_id = ? AND lane IN (0, ?)", (conversation_id, lane)
            ).fetchone()
            return row[0]
        row = conn.execute(
            "SELECT c.leaf_id, m.id FROM conversations AS c LEFT JOIN messages AS m"
            " ON m.id = c.leaf_id AND m.conversation_id = c.id WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        if row is None:
            return None
        if row[0] is not None and row[1] is not None:
            return int(row[1])
        if row[0] is not None and row[0] == 0:
            return None  # an empty branch was chosen (editing the first message)
        newest = conn.execute("SELECT MAX(id) FROM messages WHERE conversation_id = ?", (conversation_id,)).fetchone()
        return newest[0]

    def _newest_end(self, conn: sqlite3.Connection, message_id: int) -> int:
        """The end of the newest branch under `message_id` (itself if nothing follows it)."""
        while (row := conn.execute("SELECT MAX(id) FROM messages WHERE parent_id = ?", (message_id,)).fetchone())[0]:
            message_id = row[0]
        return message_id

    def _add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        status: MessageStatus,
        account_id: str,
        model: str,
        parent_id: int | None,
        lane: int,
        attachments: tuple[Attachment, ...],
        tool_call_id: str = "",
    ) -> StoredMessage:
        def run(conn: sqlite3.Connection) -> StoredMessage:
            now = self._now()
            parent = self._leaf(conn, conversation_id, lane) if parent_id == AT_LEAF else parent_id
            if (
                parent is not None
                and not conn.execute(
                    "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?", (parent, conversation_id)
                ).fetchone()
            ):
                raise KeyError(f"there is no message {parent} in conversation {conversation_id}")
            try:
                cursor = conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, status, account_id, model,"
                    " created_at, parent_id, lane, attachments, tool_call_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        role,
                        content,
                        MessageStatus(status).value,
                        account_id,
                        model,
                        now,
                        parent,
                        lane,
                        attachments_json(attachments),
                        tool_call_id,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:  # not: no such conversation
                    raise  # another constraint refused the row: a storage failure, said as one
                raise KeyError(f"there is no conversation {conversation_id}") from None
            message_id = new_id(cursor)
            conn.execute(
                "UPDATE conversations SET updated_at = ?, leaf_id = CASE WHEN ? = 0 THEN ? ELSE leaf_id END"
                " WHERE id = ?",
                (now, lane, message_id, conversation_id),
            )
            return StoredMessage(
                id=message_id,
                conversation_id=conversation_id,
                role=role,
                content=content,
                status=MessageStatus(status),
                account_id=account_id,
                model=model,
                parent_id=parent,
                lane=lane,
                attachments=attachments,
                tool_call_id=tool_call_id,
            )

        return self._transaction(run)

    def _update_message(self, message_id: int, changes: dict[str, Any]) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            nonlocal changes
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
            return found

        return self._transaction(run)

    def _ancestors(self, message_id: int) -> list[tuple[int, str, str]]:
        """(id, role, content) of the messages before `message_id` on its path, first to last."""
        return self._conn.execute(
            f"{_PATH} SELECT id, role, content FROM messages WHERE id IN (SELECT parent FROM path) ORDER BY id",
            (message_id,),
        ).fetchall()

    def _encode_request(self, message_id: int, request: SentRequest) -> str:
        """The request's record: the messages on the path before this one are kept as runs of their
        ids, the rest (the system prompt, text sent other than stored) inline."""
        return json.dumps(request.to_json(self._ancestors(message_id)), ensure_ascii=False)

    def _get_message(self, message_id: int) -> StoredMessage | None:
        row = self._conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        if not row:
            return None
        [message] = self._with_versions([row], StoredMessages(self._ancestors(message_id)) if row[10] else None)
        return message

    def _messages(self, conversation_id: int, lane: int) -> list[StoredMessage]:
        leaf = self._leaf(self._conn, conversation_id, lane)
        if leaf is None:
            return []
        rows = self._conn.execute(
            f"{_PATH} SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id IN (SELECT id FROM path) ORDER BY id", (leaf,)
        ).fetchall()
        return self._with_versions(rows, StoredMessages((row[0], row[2], row[3]) for row in rows))

    def _with_versions(self, rows: list[tuple[Any, ...]], stored: StoredMessages | None) -> list[StoredMessage]:
        """The rows as messages, each with its place among its versions (same parent, role and lane)."""
        if not rows:
            return []
        parents = sorted({row[11] for row in rows if row[11] is not None})
        places = ", ".join("?" * len(parents))
        siblings = self._conn.execute(
            "SELECT id, parent_id, role, lane FROM messages WHERE conversation_id = ?"
            f" AND (parent_id IS NULL OR parent_id IN ({places})) ORDER BY id",
            (rows[0][1], *parents),
        ).fetchall()
        versions: dict[tuple[Any, ...], list[int]] = {}
        for id_, parent, role, lane in siblings:
            versions.setdefault((parent, role, lane), []).append(id_)
        messages = []
        for row in rows:
            ids = versions.get((row[11], row[2], row[12]), [row[0]])
            message = message_from(row, stored)
            message.version, message.versions = (ids.index(row[0]) + 1 if row[0] in ids else 1), len(ids)
            messages.append(message)
        return messages

    def _show_version(self, message_id: int) -> int | None:
        def run(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return None
            leaf = self._newest_end(conn, message_id)
            conn.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, row[0]))
            return leaf

        return self._transaction(run)

    def _set_leaf(self, conversation_id: int, message_id: int | None) -> bool:
        # 0 stands for "an empty branch" (no message has id 0); NULL for "the newest message".
        return self._execute_one(
            "UPDATE conversations SET leaf_id = ? WHERE id = ?",
            (0 if message_id is None else message_id, conversation_id),
        )

    def _versions(self, message_id: int) -> list[int]:
        row = self._conn.execute(
            "SELECT conversation_id, parent_id, role, lane FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            return []
        rows = self._conn.execute(
            "SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS ? AND role = ? AND lane = ?"
            " ORDER BY id",
            row,
        )
        return [r[0] for r in rows]

    def _subtree_size(self, message_id: int) -> int:
        [(count,)] = self._conn.execute(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM messages WHERE id = ? UNION ALL SELECT m.id FROM messages"
            " AS m JOIN sub ON m.parent_id = sub.id) SELECT COUNT(*) FROM sub",
            (message_id,),
        ).fetchall()
        return int(count)

    def _delete_message(self, message_id: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return 0
            conversation_id, parent = row
            [(count,)] = conn.execute(
                "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT m.id FROM messages AS m JOIN sub"
                " ON m.parent_id = sub.id) SELECT COUNT(*) FROM sub",
                (message_id,),
            ).fetchall()
            conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))  # its subtree: ON DELETE CASCADE
            shown = conn.execute(
                "SELECT 1 FROM conversations AS c JOIN messages AS m ON m.id = c.leaf_id WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
            if shown is None:  # the branch shown went with it: show what remains under its parent
                leaf = self._newest_end(conn, parent) if parent is not None else None
                conn.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, conversation_id))
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (self._now(), conversation_id))
            return int(count)

        return self._transaction(run)

    def _attachment_digests(self) -> set[str]:
        rows = self._conn.execute("SELECT id, attachments FROM messages WHERE attachments != ''")
        return {a.digest for id_, text in rows for a in attachments_from(text, id_)}

    def _win_counts(self) -> dict[tuple[str, str], int]:
        rows = self._conn.execute(
            "SELECT account_id, model, COUNT(*) FROM messages WHERE role = 'assistant' AND vote = 1"
            " GROUP BY account_id, model"
        )
        return {(account_id, model): count for account_id, model, count in rows}

    def _recover_interrupted(self) -> list[InterruptedReply]:
        # Not activity: the conversations keep their place in the list.
        rows = self._conn.execute(
            "UPDATE messages SET status = ? WHERE status = ?"
            " RETURNING id, conversation_id, account_id, model, created_at",
            (MessageStatus.INTERRUPTED.value, MessageStatus.STREAMING.value),
        ).fetchall()
        return sorted((InterruptedReply(*row) for row in rows), key=lambda r: r.message_id)
