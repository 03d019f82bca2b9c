"""Automatic titles: after a conversation's first reply, a short title asked of its own model.

The request goes through the dispatcher like any reply, so it is recorded in usage with its cost.
The `auto_titles` setting says for which models: "local" (the default: models on this machine or
the loopback, which cost nothing), "all", or "off".
"""

from __future__ import annotations

from desktop_app.domain.chat import ChatMessage, ChatParams, Failed, TextDelta
from desktop_app.domain.conversations import Conversation, MessageStatus
from desktop_app.domain.settings import AutoTitles
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.settings import SettingsService

PROMPT = (
    "Write a title for the conversation above, at most six words, in its language."
    " Answer with the title alone: no quotes, no full stop."
)
MAX_CHARS = 60
_QUOTES = "\"'`*_#“”‘’«»"


def first_title(user_text: str) -> str:
    """What a new conversation is named after its first message (before any automatic title)."""
    return " ".join(user_text.split())[:48]


def clean_title(text: str) -> str:
    """The model's answer as a title: its first line, without quotes or markup, cut at a word."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split()).removeprefix("Title:").strip().strip(_QUOTES).rstrip(".").strip()
    if len(line) > MAX_CHARS:
        line = line[:MAX_CHARS].rsplit(" ", 1)[0]
    return line


class Titles:
    def __init__(self, *, dispatcher: Dispatcher, store: ConversationStore, settings: SettingsService) -> None:
        self._dispatcher = dispatcher
        self._store = store
        self._settings = settings

    @property
    def mode(self) -> AutoTitles:
        return self._settings.current.auto_titles

    async def set_mode(self, mode: AutoTitles) -> None:
        await self._settings.update(auto_titles=mode)

    def wanted(self, conversation: Conversation) -> bool:
        """Whether the setting asks for a title from this conversation's model."""
        mode = self.mode
        if mode == "off" or not conversation.model or conversation.compare is not None:
            return False
        return mode == "all" or self._dispatcher.costs_nothing(conversation.account_id)

    async def name(self, conversation: Conversation) -> str | None:
        """Ask for a title and rename the conversation, if it has just had its first reply and the
        user has not named it; the new title, or None (not wanted, failed, or named meanwhile)."""
        if not self.wanted(conversation):
            return None
        messages = await self._store.messages(conversation.id)
        if [m.role for m in messages] != ["user", "assistant"]:
            return None
        reply = messages[1]
        if reply.status is not MessageStatus.COMPLETE or reply.tool_calls or not reply.content.strip():
            return None  # a reply that calls tools goes on: its conversation is named after the first question
        if conversation.title != first_title(messages[0].content):
            return None  # the user named it
        asked = [
            ChatMessage("user", messages[0].content[:4000]),
            ChatMessage("assistant", messages[1].content[:4000]),
            ChatMessage("user", PROMPT),
        ]
        text: list[str] = []
        async for event in self._dispatcher.stream(
            target_id=conversation.account_id,
            model=conversation.model,
            messages=asked,
            params=ChatParams(temperature=0.3, max_tokens=64),
        ):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, Failed):
                return None
        title = clean_title("".join(text))
        fresh = await self._store.get_conversation(conversation.id)
        if not title or fresh is None or fresh.title != conversation.title:
            return None  # nothing usable, deleted, or renamed while the title was asked for
        await self._store.rename_conversation(conversation.id, title)
        conversation.title = title
        return title
