"""A conversation turn: persist the user's message, stream the reply, keep the partial text safe.

The partial reply is written to SQLite at least every `save_interval_s` while it streams, so a
crash loses at most that much; Stop, failure and success each leave the message with its status.
A save the store refuses (locked, disk full...) never cuts the stream: the reply is held in memory
(`unsaved_problem` says why) and written by the next operation or `flush_unsaved()`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from desktop_app.domain.chat import (
    ChatMessage,
    Failed,
    Finished,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
)
from desktop_app.domain.conversations import Conversation, MessageStatus, StoredMessage
from desktop_app.domain.errors import DomainError, ModelNotFound, StorageFailed
from desktop_app.services.conversations import ConversationStore
from desktop_app.services.dispatch import Dispatcher

DEFAULT_TITLE = "New conversation"
log = logging.getLogger(__name__)


class ChatService:
    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        store: ConversationStore,
        save_interval_s: float = 0.5,
    ) -> None:
        self._dispatcher = dispatcher
        self._store = store
        self._save_interval_s = save_interval_s
        self._unsaved: dict[int, dict[str, Any]] = {}  # message id -> the changes the store refused
        self.unsaved_problem: StorageFailed | None = None  # why they are held

    @property
    def store(self) -> ConversationStore:
        return self._store

    def unsaved(self, message_id: int) -> dict[str, Any] | None:
        """What is held in memory for a reply the store could not take yet, if anything."""
        return self._unsaved.get(message_id)

    async def flush_unsaved(self) -> None:
        """Write the replies held in memory; StorageFailed (and they stay held) if the store still refuses."""
        for message_id in list(self._unsaved):
            problem = await self._save(message_id)
            if problem is not None:
                raise problem
        self.unsaved_problem = None

    async def add_user_message(self, conversation: Conversation, user_text: str) -> None:
        """Store the user's message (a new conversation is named after it); StorageFailed if it
        could not be stored, and then nothing was."""
        await self.flush_unsaved()
        await self._store.add_message(conversation.id, role="user", content=user_text)
        if conversation.title == DEFAULT_TITLE and user_text.strip():
            title = " ".join(user_text.split())[:48]
            try:
                await self._store.rename_conversation(conversation.id, title)
            except StorageFailed:
                return  # the message is stored; the name can wait for the next message
            conversation.title = title

    async def reply(
        self, conversation: Conversation, user_text: str, *, override_budget: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """Add the user's message and stream the assistant's answer."""
        await self.add_user_message(conversation, user_text)
        # Closing this generator (Stop) must close the answer now, not whenever it is collected:
        # only then is the partial reply stored as STOPPED and the HTTP stream closed at once.
        answer = self._answer(conversation, override_budget)
        async with contextlib.aclosing(answer):
            async for event in answer:
                yield event

    async def discard_unfinished_answer(self, conversation: Conversation) -> bool:
        """Before a Retry: drop the last answer if it failed or was cut short. True if one was."""
        await self.flush_unsaved()
        messages = await self._store.messages(conversation.id)
        if len(messages) >= 2 and messages[-1].role == "assistant" \
                and messages[-1].status is not MessageStatus.COMPLETE:
            await self._store.delete_messages_after(conversation.id, messages[-2].id)
            return True
        return False

    def answer(self, conversation: Conversation, *, override_budget: bool = False) -> AsyncIterator[StreamEvent]:
        """Stream an answer to the conversation as it stands (used by Retry)."""
        return self._answer(conversation, override_budget)

    async def _answer(self, conversation: Conversation, override_budget: bool = False) -> AsyncIterator[StreamEvent]:
        await self.flush_unsaved()
        history = [
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]
            for m in await self._store.messages(conversation.id)
            if _counts_as_history(m)
        ]
        reply = await self._store.add_message(
            conversation.id, role="assistant", content="", status=MessageStatus.STREAMING,
            account_id=conversation.account_id, model=conversation.model,
        )
        text: list[str] = []
        reasoning: list[str] = []
        status = MessageStatus.STOPPED  # unless the stream says otherwise
        last_save = time.monotonic()
        if not conversation.account_id or not conversation.model:
            events = _single(Failed(ModelNotFound("No model is selected for this conversation.",
                                                  "Pick a model in the model picker, then send again.")))
        else:
            events = self._dispatcher.stream(
                target_id=conversation.account_id, model=conversation.model, messages=history,
                params=conversation.params, override_budget=override_budget)
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                    elif isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                    elif isinstance(event, Finished):
                        status = MessageStatus.COMPLETE
                        await self._save(
                            reply.id, content="".join(text), reasoning="".join(reasoning),
                            status=status, metrics=event.metrics)
                    elif isinstance(event, Failed):
                        status = MessageStatus.FAILED
                        await self._save(
                            reply.id, content="".join(text), reasoning="".join(reasoning),
                            status=status, metrics=event.metrics, error=_error_text(event.error))
                    now = time.monotonic()
                    if status is MessageStatus.STOPPED and now - last_save >= self._save_interval_s:
                        last_save = now
                        await self._save(reply.id, content="".join(text), reasoning="".join(reasoning))
                    yield event
        except StorageFailed as exc:
            # A store the request itself needs failed (the usage log, for a budget): the turn says
            # so, rather than looking stopped or cut short by a closing app.
            status = MessageStatus.FAILED
            await self._save(reply.id, content="".join(text), reasoning="".join(reasoning), status=status,
                             error=_error_text(exc))
            raise
        finally:
            if status is MessageStatus.STOPPED:
                # Stopped by the user (or the window closed): keep what arrived.
                await self._save(reply.id, content="".join(text), reasoning="".join(reasoning), status=status)

    async def _save(self, message_id: int, **changes: Any) -> StorageFailed | None:
        """Write the reply's changes (with any held before); on a storage fault hold them instead."""
        held = {**self._unsaved.pop(message_id, {}), **changes}
        try:
            await self._store.update_message(message_id, **held)
        except StorageFailed as exc:
            self._unsaved[message_id] = held
            self.unsaved_problem = exc
            log.warning("reply %s is held in memory: the store refused it", message_id)
            return exc
        if not self._unsaved:
            self.unsaved_problem = None
        return None


async def _single(event: StreamEvent) -> AsyncIterator[StreamEvent]:
    yield event


def _counts_as_history(message: StoredMessage) -> bool:
    if message.role == "user":
        return True
    return message.role == "assistant" and message.status in (MessageStatus.COMPLETE, MessageStatus.STOPPED) \
        and bool(message.content)


def _error_text(error: DomainError) -> str:
    return f"{error.message} {error.action}".strip()
