"""Rows of the conversations database as domain objects, and back: the columns' JSON read leniently.

A value a build cannot read (written by another version, or damaged) costs only that value: the
conversation or message still opens, and the log says which.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from desktop_app.domain.attachments import Attachment
from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.compare import CompareSetup
from desktop_app.domain.conversations import Conversation, MessageStatus, StoredMessage
from desktop_app.domain.sent_requests import SentRequest, StoredMessages
from desktop_app.domain.tools import ToolCall

log = logging.getLogger("desktop_app.services.chat.conversations")  # as before the split


def new_id(cursor: sqlite3.Cursor) -> int:
    """The id the INSERT just run on `cursor` gave its row (typeshed allows None: no INSERT yet)."""
    row_id = cursor.lastrowid
    if row_id is None:
        raise sqlite3.InterfaceError("the INSERT reported no row id")
    return row_id


def attachments_json(attachments: tuple[Attachment, ...]) -> str:
    return json.dumps([a.to_json() for a in attachments], ensure_ascii=False) if attachments else ""


def attachments_from(text: str, message_id: int) -> tuple[Attachment, ...]:
    if not text:
        return ()
    try:
        return tuple(Attachment.from_json(item) for item in json.loads(text))
    except (ValueError, TypeError, KeyError):
        log.warning("message %s has unreadable attachment records; it is shown without them", message_id)
        return ()


def tool_calls_json(calls: tuple[ToolCall, ...]) -> str:
    return json.dumps([c.to_json() for c in calls], ensure_ascii=False) if calls else ""


def tool_calls_from(text: str, message_id: int) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    try:
        return tuple(ToolCall.from_json(item) for item in json.loads(text))
    except (ValueError, TypeError, KeyError):
        log.warning("message %s has unreadable tool calls; it is shown without them", message_id)
        return ()


def compare_json(setup: CompareSetup | None) -> str:
    return "" if setup is None else setup.model_dump_json()


# What conversation_from reads, from `conversations`.
CONVERSATION_SELECT = (
    "id, title, account_id, model, params, updated_at, compare, pinned,"
    " (SELECT group_concat(tag, char(31)) FROM tags WHERE conversation_id = conversations.id)"
)


def conversation_from(row: tuple[Any, ...]) -> Conversation:
    id_, title, account_id, model, params, updated_at, compare, pinned, tags = row
    return Conversation(
        id=id_,
        title=title,
        account_id=account_id,
        model=model,
        params=params_from(params, id_),
        updated_at=updated_at,
        compare=compare_from(compare, id_),
        pinned=bool(pinned),
        tags=tuple(sorted(tags.split("\x1f"), key=str.casefold)) if tags else (),
    )


def params_from(text: str, conversation_id: int) -> ChatParams:
    try:
        return ChatParams.model_validate_json(text)
    except ValueError:
        # Parameters saved by a build with other limits should not make the conversation vanish.
        log.warning("conversation %s has unreadable parameters; using defaults", conversation_id)
        return ChatParams()


def compare_from(text: str, conversation_id: int) -> CompareSetup | None:
    if not text:
        return None
    try:
        return CompareSetup.model_validate_json(text)
    except ValueError:
        # Its messages stay; it opens as an ordinary conversation showing its newest reply.
        log.warning("conversation %s has an unreadable comparison set-up; opening it as a chat", conversation_id)
        return None


def message_from(row: tuple[Any, ...], stored: StoredMessages | None = None) -> StoredMessage:
    id_, conversation_id, role, content, status, reasoning, metrics, error, account_id, model, request, *tree = row
    parent_id, lane, vote, attachments, tool_calls, tool_call_id = tree
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
        parent_id=parent_id,
        lane=lane,
        vote=vote,
        attachments=attachments_from(attachments, id_),
        tool_calls=tool_calls_from(tool_calls, id_),
        tool_call_id=tool_call_id,
    )
