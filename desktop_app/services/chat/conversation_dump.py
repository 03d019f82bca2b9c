"""Whole conversations out of the database as ModelDesk JSON records, and records back in as new ones.

Runs on the store's worker. A record's message ids are local to it (1, 2, ... in the order the
messages were written), so exporting what was imported gives the same record. A stored request
refers to earlier messages by runs of their ids: those are mapped to and from the local ids, which
keep the same order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.compare import CompareSetup
from desktop_app.domain.conversations import MessageStatus
from desktop_app.services.chat.conversation_rows import (
    attachments_from,
    compare_from,
    new_id,
    params_from,
    tool_calls_from,
)

_MESSAGE_FIELDS = (
    "id, parent_id, role, content, reasoning, status, error, account_id, model, created_at, lane, vote,"
    " metrics, request, attachments, tool_calls, tool_call_id"
)


def dump(conn: sqlite3.Connection, conversation_id: int) -> dict[str, Any] | None:
    """The conversation as a record (without its id in the file); None if it does not exist."""
    row = conn.execute(
        "SELECT title, account_id, model, params, compare, created_at, updated_at, leaf_id, pinned FROM conversations"
        " WHERE id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None:
        return None
    title, account_id, model, params, compare, created_at, updated_at, leaf_id, pinned = row
    tags = [
        t for (t,) in conn.execute("SELECT tag FROM tags WHERE conversation_id = ? ORDER BY tag", (conversation_id,))
    ]
    rows = conn.execute(
        f"SELECT {_MESSAGE_FIELDS} FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
    ).fetchall()
    local = {r[0]: n for n, r in enumerate(rows, 1)}
    setup = compare_from(compare, conversation_id)
    return {
        "title": title,
        "account_id": account_id,
        "model": model,
        "params": params_from(params, conversation_id).model_dump(mode="json"),
        "compare": None if setup is None else setup.model_dump(mode="json"),
        "created_at": created_at,
        "updated_at": updated_at,
        # 0: an empty branch was chosen; null: none chosen, the newest message is shown.
        "leaf": 0 if leaf_id == 0 else local.get(leaf_id),
        "pinned": bool(pinned),
        "tags": tags,
        "messages": [_message(r, local) for r in rows],
    }


def _message(row: tuple[Any, ...], local: Mapping[int, int]) -> dict[str, Any]:
    id_, parent, role, content, reasoning, status, error, account_id, model, created_at, lane, vote, *rest = row
    metrics, request, attachments, tool_calls, tool_call_id = rest
    try:
        reply_metrics = ReplyMetrics.from_json(json.loads(metrics))
    except (ValueError, TypeError):
        reply_metrics = ReplyMetrics()
    if status not in MessageStatus.__members__.values():
        status = MessageStatus.FAILED.value  # as the transcript shows it
    return {
        "id": local[id_],
        "parent": None if parent is None else local.get(parent),
        "role": role,
        "content": content,
        "reasoning": reasoning,
        "status": status,
        "error": error,
        "account_id": account_id,
        "model": model,
        "created_at": created_at,
        "lane": lane,
        "vote": vote,
        "metrics": reply_metrics.to_json(),
        "request": _mapped_request(request, local),
        "attachments": [a.to_json() for a in attachments_from(attachments, id_)],
        "tool_calls": [c.to_json() for c in tool_calls_from(tool_calls, id_)],
        "tool_call_id": tool_call_id,
    }


def _mapped_request(text: str | dict[str, Any], ids: Mapping[int, int]) -> dict[str, Any] | None:
    """The request record with its runs' message ids mapped through `ids` (0 for one not found)."""
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    messages = data.get("messages")
    if not isinstance(messages, list):
        return data
    mapped = []
    for m in messages:
        run = m.get("run") if isinstance(m, dict) else None
        if isinstance(run, list) and len(run) == 2 and all(isinstance(i, int) for i in run):
            m = {**m, "run": [ids.get(run[0], 0), ids.get(run[1], 0)]}
        mapped.append(m)
    return {**data, "messages": mapped}


def load(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Insert each (checked) record as a new conversation; (its id, its messages) for each. The
    caller holds the transaction."""
    out = []
    for record in records:
        params = ChatParams.model_validate(record["params"])
        compare = None if record["compare"] is None else CompareSetup.model_validate(record["compare"])
        cursor = conn.execute(
            "INSERT INTO conversations (title, account_id, model, params, created_at, updated_at, compare)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record["title"],
                record["account_id"],
                record["model"],
                params.model_dump_json(),
                record["created_at"],
                record["updated_at"],
                "" if compare is None else compare.model_dump_json(),
            ),
        )
        conversation_id = new_id(cursor)
        ids: dict[int, int] = {}
        for m in record["messages"]:
            ids[m["id"]] = _insert_message(conn, conversation_id, m, ids)
        leaf = record["leaf"]
        conn.execute(
            "UPDATE conversations SET leaf_id = ?, pinned = ? WHERE id = ?",
            (0 if leaf == 0 else ids.get(leaf), int(record.get("pinned", False)), conversation_id),
        )
        conn.executemany(  # as the file has them: written by a store that kept them clean
            "INSERT OR IGNORE INTO tags (conversation_id, tag) VALUES (?, ?)",
            [(conversation_id, tag) for tag in record.get("tags", ())],
        )
        out.append((conversation_id, len(ids)))
    return out


def _insert_message(conn: sqlite3.Connection, conversation_id: int, m: Mapping[str, Any], ids: dict[int, int]) -> int:
    request = _mapped_request(m["request"], ids) if m["request"] is not None else None
    dumps: Callable[[Any], str] = lambda value: json.dumps(value, ensure_ascii=False)  # noqa: E731
    cursor = conn.execute(
        "INSERT INTO messages (conversation_id, parent_id, role, content, reasoning, status, error, account_id,"
        " model, created_at, lane, vote, metrics, request, attachments, tool_calls, tool_call_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            conversation_id,
            None if m["parent"] is None else ids[m["parent"]],
            m["role"],
            m["content"],
            m["reasoning"],
            # A reply still arriving in the other app is one that will never finish here.
            MessageStatus.INTERRUPTED.value if m["status"] == MessageStatus.STREAMING else m["status"],
            m["error"],
            m["account_id"],
            m["model"],
            m["created_at"],
            m["lane"],
            m["vote"],
            dumps(ReplyMetrics.from_json(m["metrics"]).to_json()),
            "" if request is None else dumps(request),
            dumps(m["attachments"]) if m["attachments"] else "",
            dumps(m["tool_calls"]) if m["tool_calls"] else "",
            m["tool_call_id"],
        ),
    )
    return new_id(cursor)
