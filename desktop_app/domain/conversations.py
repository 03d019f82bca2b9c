"""Conversations and their messages as stored; the store lives in services/."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from desktop_app.domain.attachments import Attachment
from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.compare import CompareSetup
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.tools import ToolCall


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"  # still arriving; found at start-up it means the app died mid-reply
    STOPPED = "stopped"
    FAILED = "failed"
    # Cut off by a crash: a STREAMING reply found when the store is next opened becomes this.
    INTERRUPTED = "interrupted"


# A reply cut short (stopped, or interrupted by a crash) is sent with the next message as context,
# like a finished one: the user saw that text and may be answering it. One place decides it.
SENT_AS_CONTEXT = frozenset({MessageStatus.COMPLETE, MessageStatus.STOPPED, MessageStatus.INTERRUPTED})


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
    request: SentRequest | None = None  # what was sent for this reply, when it was recorded
    parent_id: int | None = None  # the message this one follows (None: the conversation's first)
    lane: int = 0  # 0: an ordinary or shared message; k: compare column k's
    vote: int = 0  # 1: the reply the user picked among a compare turn's
    version: int = 1  # its place among its versions (same parent, role and lane), from 1
    versions: int = 1  # how many versions that turn has (regenerated replies, edited messages)
    attachments: tuple[Attachment, ...] = ()  # files sent with it, in the order attached
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant's calls to the tools offered
    tool_call_id: str = ""  # a `tool` message: the call it answers


@dataclass(frozen=True, slots=True)
class InterruptedReply:
    """A reply that was still arriving when the app died, as found at the next start."""

    message_id: int
    conversation_id: int
    account_id: str
    model: str
    started_at: float  # unix time the reply was begun


@dataclass(slots=True)
class Conversation:
    id: int
    title: str
    account_id: str = ""
    model: str = ""
    params: ChatParams = field(default_factory=ChatParams)
    updated_at: float = 0.0
    compare: CompareSetup | None = None  # set while it is a comparison
    pinned: bool = False  # listed before the others
    tags: tuple[str, ...] = ()  # free text, sorted
