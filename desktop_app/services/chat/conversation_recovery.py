"""Copying what SQLite can still read from a damaged conversations file into a healthy one:
conversations (pins included), messages and tags.

Runs on the store's worker thread, inside its transaction. The damaged file may come from any
schema: columns it lacks take their defaults, and a message whose parent could not be read follows
the message recovered before it in its conversation (so every recovered turn stays reachable).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CONVERSATION_COLUMNS = ("id", "title", "account_id", "model", "params", "created_at", "updated_at")
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "role",
    "content",
    "reasoning",
    "status",
    "metrics",
    "error",
    "account_id",
    "model",
    "created_at",
)
# Columns later schemas added, copied when the damaged file has them.
_LATER_CONVERSATION_COLUMNS = ("compare", "pinned")
_LATER_MESSAGE_COLUMNS = ("request", "lane", "vote", "attachments", "parent_id")  # parent_id last
_CHUNK = 64


def _present(conn: sqlite3.Connection, table: str, columns: tuple[str, ...], later: tuple[str, ...]) -> list[str]:
    found = list(columns)
    for column in later:
        try:
            conn.execute(f"SELECT {column} FROM {table} LIMIT 0")
        except sqlite3.DatabaseError:
            continue
        found.append(column)
    return found


def _readable_rows(conn: sqlite3.Connection, table: str, columns: list[str]) -> Iterator[tuple[Any, ...]]:
    """Every row of `table` (by id) that SQLite can still read; a damaged chunk is read row by row."""
    last = 0
    for query in (f"SELECT MAX(id) FROM {table}", "SELECT seq FROM sqlite_sequence WHERE name = ?"):
        try:
            row = conn.execute(query, (table,) if "?" in query else ()).fetchone()
        except sqlite3.DatabaseError:
            continue
        last = max(last, (row or (0,))[0] or 0)
    select = f"SELECT {', '.join(columns)} FROM {table}"
    for start in range(0, last, _CHUNK):
        try:
            yield from conn.execute(
                f"{select} WHERE id > ? AND id <= ? ORDER BY id", (start, start + _CHUNK)
            ).fetchall()
            continue
        except sqlite3.DatabaseError:
            pass
        for id_ in range(start + 1, start + _CHUNK + 1):
            try:
                row = conn.execute(f"{select} WHERE id = ?", (id_,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                yield row


def _insert_keeping_id(conn: sqlite3.Connection, table: str, columns: list[str], values: list[Any]) -> int:
    """Insert the row under its old id (first of `values`) when that id is free here; its id here."""
    taken = conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (values[0],)).fetchone()
    places = ", ".join("?" * len(columns))
    cursor = conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({places})", (None if taken else values[0], *values[1:])
    )
    if cursor.lastrowid is None:
        raise sqlite3.InterfaceError("the INSERT reported no row id")
    return cursor.lastrowid


def _readable_tags(conn: sqlite3.Connection, conversation_ids: list[int]) -> list[tuple[int, str]]:
    """(conversation id, tag) rows SQLite can still read: the whole table, else conversation by
    conversation (its primary key starts with the conversation); none from a file without tags."""
    try:
        return conn.execute("SELECT conversation_id, tag FROM tags").fetchall()
    except sqlite3.DatabaseError:  # damaged, or a schema from before tags
        pass
    found: list[tuple[int, str]] = []
    for conversation_id in conversation_ids:
        try:
            found += conn.execute("SELECT conversation_id, tag FROM tags WHERE conversation_id = ?", (conversation_id,))
        except sqlite3.DatabaseError:
            continue
    return found


def copy_readable(conn: sqlite3.Connection, source: Path, now: Callable[[], float]) -> tuple[int, int]:
    """Copy the readable conversations and messages of `source` into `conn` (in its open
    transaction); returns how many of each. A message whose conversation is unreadable goes into
    a conversation of its own."""
    damaged = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
    try:
        conversation_columns = _present(damaged, "conversations", CONVERSATION_COLUMNS, _LATER_CONVERSATION_COLUMNS)
        message_columns = _present(damaged, "messages", MESSAGE_COLUMNS, _LATER_MESSAGE_COLUMNS)
        conversations = list(_readable_rows(damaged, "conversations", conversation_columns))
        messages = list(_readable_rows(damaged, "messages", message_columns))
        tags = _readable_tags(damaged, [row[0] for row in conversations])
    finally:
        damaged.close()
    new_conversations: dict[int, int] = {}
    for row in conversations:
        new_conversations[row[0]] = _insert_keeping_id(conn, "conversations", conversation_columns, list(row))
    has_parent = message_columns[-1] == "parent_id"
    insert_columns = [*message_columns, *(() if has_parent else ("parent_id",))]
    new_messages: dict[int, int] = {}
    last_in: dict[int, int] = {}  # conversation (here) -> the message recovered last in it
    for row in messages:
        values = list(row) if has_parent else [*row, None]
        old_id, conversation_id, old_parent = values[0], values[1], values[-1]
        if conversation_id not in new_conversations:
            stamp = now()
            new_conversations[conversation_id] = _insert_keeping_id(
                conn,
                "conversations",
                list(CONVERSATION_COLUMNS),
                [conversation_id, f"Recovered conversation {conversation_id}", "", "", "{}", stamp, stamp],
            )
        here = new_conversations[conversation_id]
        values[1] = here
        # A message read from an older file, or whose parent was lost, follows the one before it.
        values[-1] = new_messages.get(old_parent) if old_parent is not None else None
        if values[-1] is None and (old_parent is not None or not has_parent):
            values[-1] = last_in.get(here)
        new_messages[old_id] = last_in[here] = _insert_keeping_id(conn, "messages", insert_columns, values)
    conn.executemany(
        "INSERT OR IGNORE INTO tags (conversation_id, tag) VALUES (?, ?)",
        [(new_conversations[old], tag) for old, tag in tags if old in new_conversations],
    )
    return len(conversations), len(messages)
