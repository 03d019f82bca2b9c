"""A conversation turn: persist the user's message, stream the reply, keep the partial text safe.

Text that arrived is written to SQLite at most `save_interval_s` after it arrived, by a timer of
its own (a stream that pauses does not hold it back), so a crash loses at most that much; Stop,
failure and success each leave the message with its status.
A save the store refuses (locked, disk full...) never cuts the stream: the reply is held in memory
(`unsaved_problem` says why) and written by the next operation or `flush_unsaved()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from desktop_app.domain.chat import (
    ChatMessage,
    ChatParams,
    Failed,
    Finished,
    ReasoningDelta,
    ReplyMetrics,
    Started,
    StreamEvent,
    TextDelta,
)
from desktop_app.domain.conversations import (
    SENT_AS_CONTEXT,
    Conversation,
    InterruptedReply,
    MessageStatus,
    StoredMessage,
)
from desktop_app.domain.errors import DomainError, StorageFailed
from desktop_app.domain.settings import Settings
from desktop_app.domain.usage import UsageRecord
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat import preflight
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher

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

    async def refusal(
        self,
        *,
        target_id: str,
        model: str,
        params: ChatParams,
        text: str | None = None,
    ) -> DomainError | None:
        """Why this message (or, without `text`, an answer) cannot be sent at all, or None: asked at
        Send, before anything is stored, planned or recorded."""
        if text is not None and (problem := preflight.empty_message(text)) is not None:
            return problem
        return await self._dispatcher.refusal(target_id=target_id, model=model, params=params)

    async def add_user_message(self, conversation: Conversation, user_text: str) -> None:
        """Store the user's message (a new conversation is named after it); StorageFailed if it
        could not be stored, and then nothing was. An empty message is refused (raised), not stored."""
        if (problem := preflight.empty_message(user_text)) is not None:
            raise problem
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
        self,
        conversation: Conversation,
        user_text: str,
        *,
        override_budget: bool = False,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Add the user's message and stream the assistant's answer. A request that cannot be sent
        raises its DomainError before anything is stored (see `refusal`)."""
        problem = await self.refusal(
            target_id=conversation.account_id, model=conversation.model, params=conversation.params, text=user_text
        )
        if problem is not None:
            raise problem
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
        if (
            len(messages) >= 2
            and messages[-1].role == "assistant"
            and messages[-1].status is not MessageStatus.COMPLETE
        ):
            await self._store.delete_messages_after(conversation.id, messages[-2].id)
            return True
        return False

    def answer(self, conversation: Conversation, *, override_budget: bool = False) -> AsyncGenerator[StreamEvent, None]:
        """Stream an answer to the conversation as it stands (used by Retry); raises, as `reply` does,
        when it cannot be sent."""
        return self._answer(conversation, override_budget)

    async def _answer(
        self, conversation: Conversation, override_budget: bool = False
    ) -> AsyncGenerator[StreamEvent, None]:
        # Asked again here, just before the reply is stored: the pane asked at Send, but the account
        # or its key may have gone since.
        problem = await self.refusal(
            target_id=conversation.account_id, model=conversation.model, params=conversation.params
        )
        if problem is not None:
            raise problem
        await self.flush_unsaved()
        history = [
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]
            for m in await self._store.messages(conversation.id)
            if _counts_as_history(m)
        ]
        reply = await self._store.add_message(
            conversation.id,
            role="assistant",
            content="",
            status=MessageStatus.STREAMING,
            account_id=conversation.account_id,
            model=conversation.model,
        )
        text: list[str] = []
        reasoning: list[str] = []
        status = MessageStatus.STOPPED  # unless the stream says otherwise
        saver = _PartialSaver(self._save, reply.id, text, reasoning, self._save_interval_s)
        events = self._dispatcher.stream(
            target_id=conversation.account_id,
            model=conversation.model,
            messages=history,
            params=conversation.params,
            override_budget=override_budget,
        )
        async with contextlib.aclosing(events):
            try:
                async for event in events:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        saver.changed()
                    elif isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                        saver.changed()
                    elif isinstance(event, Started) and event.request is not None:
                        # Kept with the reply now, so it survives a crash; a pool's later attempt replaces it.
                        await self._save(reply.id, request=event.request)
                    elif isinstance(event, Finished):
                        status = MessageStatus.COMPLETE
                        await saver.finish(status, metrics=event.metrics)
                    elif isinstance(event, Failed):
                        status = MessageStatus.FAILED
                        await saver.finish(status, metrics=event.metrics, error=_error_text(event.error))
                    yield event
            except StorageFailed as exc:
                # A store the request itself needs failed (the usage log, for a budget): the turn says
                # so, rather than looking stopped or cut short by a closing app.
                status = MessageStatus.FAILED
                await saver.finish(status, error=_error_text(exc))
                raise
            finally:
                if status is MessageStatus.STOPPED:
                    # Stopped by the user (or the app quitting): keep what arrived.
                    await saver.finish(status)
                else:
                    await saver.stop()

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


class _PartialSaver:
    """Writes the partial reply `interval` seconds after the first text not yet written arrived."""

    def __init__(
        self,
        save: Callable[..., Awaitable[StorageFailed | None]],
        message_id: int,
        text: list[str],
        reasoning: list[str],
        interval: float,
    ) -> None:
        self._save, self._id, self._text, self._reasoning = save, message_id, text, reasoning
        self._interval = interval
        self._unsaved_since: float | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        if self._unsaved_since is None:
            self._unsaved_since = time.monotonic()
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"chat:save:{self._id}")

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            assert self._unsaved_since is not None
            delay = self._unsaved_since + self._interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._dirty.clear()
            self._unsaved_since = None
            # A store that refuses holds the text in memory (ChatService._save); the stream goes on.
            await self._save(self._id, content="".join(self._text), reasoning="".join(self._reasoning))

    async def stop(self) -> None:
        """No more timed writes; one already asked for still happens (the store shields it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._unsaved_since = None

    async def finish(self, status: MessageStatus, **changes: Any) -> None:
        """The reply's last write: timed writes stop, then all its text is saved with `status`."""
        await self.stop()
        await self._save(
            self._id, content="".join(self._text), reasoning="".join(self._reasoning), status=status, **changes
        )


def _counts_as_history(message: StoredMessage) -> bool:
    if message.role == "user":
        return True
    return message.role == "assistant" and message.status in SENT_AS_CONTEXT and bool(message.content)


async def recover_interrupted(
    store: ConversationStore,
    usage: UsageStore,
    settings: Settings,
) -> list[InterruptedReply]:
    """At start-up: replies a crash cut off become `interrupted`, and each gets the usage record its
    request never wrote (status "interrupted", tokens and cost unknown)."""
    found = await store.recover_interrupted()
    for reply in found:
        pool = settings.pool(reply.account_id)
        await usage.record(
            UsageRecord.from_metrics(
                ReplyMetrics(),  # nothing measured
                at=reply.started_at,
                account_id=reply.account_id,
                model=reply.model,
                status="interrupted",
                pool_id=pool.id if pool else "",
            )
        )
    return found


def _error_text(error: DomainError) -> str:
    return f"{error.message} {error.action}".strip()
