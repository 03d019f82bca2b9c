"""Conversations and their messages as stored; the store lives in services/."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from desktop_app.domain.chat import ChatParams, ReplyMetrics


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"  # still arriving; found at start-up it means the app died mid-reply
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(slots=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: str
    content: str
    status: MessageStatus = MessageStatus.COMPLETE
    reasoning: str = ""
    metrics: ReplyMetrics = field(default_factory=ReplyMetrics)
    error: str = ""
    account_id: str = ""
    model: str = ""


@dataclass(slots=True)
class Conversation:
    id: int
    title: str
    account_id: str = ""
    model: str = ""
    params: ChatParams = field(default_factory=ChatParams)
    updated_at: float = 0.0
