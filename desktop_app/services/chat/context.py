"""How many tokens the next request would carry: system prompt, the conversation so far, the draft.

Counted with LiteLLM's token counter for the model (`estimate_tokens`), on a worker thread. The
count never imports LiteLLM itself: until something else has started the engine (the first
keystroke does), there is no count. The tokenizer (20 to 80 MB) is kept only while there is a
draft: a count without one (the conversation once a reply has ended) lets it go afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatMessage
from desktop_app.services.chat.llm import litellm_model_name
from desktop_app.services.litellm_engine import (
    LiteLLMEngine,
    estimate_tokens,
    release_duplicate_tables,
    release_tokenizers,
)

History = Callable[[int], Awaitable[Sequence[ChatMessage]]]


def request_messages(system_prompt: str, history: Sequence[ChatMessage], draft: str) -> list[dict[str, str]]:
    """The messages as they would be sent, the draft last (as the system prompt is added at dispatch)."""
    messages = [m.as_dict() for m in history if m.role != "system"]
    if system_prompt.strip():
        messages.insert(0, {"role": "system", "content": system_prompt})
    if draft.strip():
        messages.append({"role": "user", "content": draft})
    return messages


class ContextCounter:
    def __init__(self, *, engine: LiteLLMEngine, history: History) -> None:
        self._engine = engine
        self._history = history

    async def count(
        self, *, account: Account, model: str, conversation_id: int | None, system_prompt: str, draft: str
    ) -> int | None:
        """Tokens of the request `draft` would make; None while LiteLLM is not (being) loaded.
        StorageFailed when the conversation cannot be read."""
        if not self._engine.started:
            return None
        history = await self._history(conversation_id) if conversation_id is not None else ()
        messages = request_messages(system_prompt, history, draft)
        if not messages:
            return 0
        litellm = await self._engine.litellm()
        keep = bool(draft.strip())
        return await asyncio.to_thread(_count, litellm, litellm_model_name(account, model), messages, keep)


def _count(litellm: Any, model: str, messages: list[dict[str, str]], keep_tokenizer: bool) -> int:
    try:
        return estimate_tokens(litellm, model, messages=messages)
    finally:
        if keep_tokenizer:
            release_duplicate_tables()  # a first count loads a tokenizer
        else:
            release_tokenizers()
