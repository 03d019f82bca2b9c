"""Compare mode's turns over the conversation tree: who gets the user's message, which reply the
user picked, and turning a comparison back into an ordinary conversation.

A user turn is one shared message (lane 0) when every column has the same history: the first
turn, or after the user picked a reply (the shared message then follows that reply, so every
column goes on from it). Otherwise each column gets its own copy of the message (lane k).
"""

from __future__ import annotations

import asyncio

from desktop_app.domain.attachments import Attachment
from desktop_app.domain.compare import CompareSetup
from desktop_app.domain.conversations import Conversation, MessageStatus, StoredMessage
from desktop_app.services.chat import preflight
from desktop_app.services.chat.conversations import AT_LEAF
from desktop_app.services.chat.service import DEFAULT_TITLE, ChatService


class CompareTurns:
    def __init__(self, chat: ChatService) -> None:
        self._chat = chat

    async def lanes(self, conversation: Conversation, columns: int) -> list[list[StoredMessage]]:
        """Each column's history (path from the first message), column 1 first."""
        store = self._chat.store
        return list(await asyncio.gather(*(store.messages(conversation.id, lane=k) for k in range(1, columns + 1))))

    async def set_setup(self, conversation: Conversation, setup: CompareSetup) -> None:
        await self._chat.store.set_compare(conversation.id, setup)
        conversation.compare = setup

    async def add_user_turn(
        self,
        conversation: Conversation,
        text: str,
        columns: int,
        *,
        first: bool = False,
        attachments: tuple[Attachment, ...] = (),
    ) -> list[list[StoredMessage]] | None:
        """Store the user's message (with its attached files) for every column (see the module
        docstring); StorageFailed if it could not be, and an empty message is refused. `first`: the
        comparison has no message yet; then each column's history is known without a read, and
        returned (as `lanes` would)."""
        if not attachments and (problem := preflight.empty_message(text)) is not None:
            raise problem
        await self._chat.flush_unsaved()
        store = self._chat.store

        async def add(lane: int, parent_id: int | None = AT_LEAF) -> StoredMessage:
            return await store.add_message(
                conversation.id, role="user", content=text, lane=lane, parent_id=parent_id, attachments=attachments
            )

        if first:
            shared = await add(0)
            return [[shared] for _ in range(columns)]
        lanes = await self.lanes(conversation, columns)
        lasts = [path[-1] if path else None for path in lanes] or [None]
        picked = next((m for m in lasts if m is not None and m.role == "assistant" and m.vote == 1), None)
        if picked is not None:
            await add(0, picked.id)
        elif len({m.id if m else None for m in lasts}) == 1:
            await add(0)
        else:
            for lane in range(1, columns + 1):
                await add(lane)
        return None

    async def name_after(self, conversation: Conversation, text: str) -> bool:
        """A new comparison is named after its first message (asked once the streams are going, so
        that it does not hold them up). True if it was named now."""
        if conversation.title != DEFAULT_TITLE or not text.strip():
            return False
        title = " ".join(text.split())[:48]
        await self._chat.store.rename_conversation(conversation.id, title)
        conversation.title = title
        return True

    async def discard_unfinished(self, conversation: Conversation, lane: int) -> bool:
        """Before a column's Retry: drop its last reply if it failed or was cut short. True if one was."""
        await self._chat.flush_unsaved()
        path = await self._chat.store.messages(conversation.id, lane=lane)
        last = path[-1] if path else None
        if last is None or last.role != "assistant" or last.lane != lane or last.status is MessageStatus.COMPLETE:
            return False
        await self._chat.store.delete_message(last.id)
        return True

    async def pick(self, reply: StoredMessage) -> None:
        """The user keeps this reply: it is voted for, and the next turn goes on from it."""
        await self._chat.store.set_vote(reply.id, 1)
        reply.vote = 1

    async def keep_only(self, conversation: Conversation, reply: StoredMessage) -> None:
        """End the comparison: an ordinary conversation that goes on from `reply` (the other
        columns' replies become versions of that turn)."""
        if not reply.vote:
            await self.pick(reply)
        store = self._chat.store
        await store.set_compare(conversation.id, None, keep=reply.id)
        conversation.compare = None
        conversation.account_id, conversation.model = reply.account_id, reply.model
        await store.update_conversation_settings(
            conversation.id, account_id=reply.account_id, model=reply.model, params=conversation.params
        )
