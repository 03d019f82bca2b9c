"""Anthropic prompt caching: where a conversation's `cache_control` breakpoints go.

Anthropic caches the prompt prefix (tools, then system, then messages) up to a block marked
`cache_control: {"type": "ephemeral"}`, at most 4 such blocks per request (its prompt-caching
documentation). Two are set here: the end of the system prompt (tools come before it, so they are
cached with it) and the end of the last history message before the new turn, so the next turn
reads everything before it from the cache. They are sent as OpenAI-style content parts with
`cache_control`, which LiteLLM passes on to Anthropic.
"""

from __future__ import annotations

import copy
from typing import Any

# Providers whose API takes `cache_control` breakpoints (others cache on their own, or not at all).
CACHE_CONTROL_PROVIDERS = frozenset({"anthropic"})
MAX_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}


def takes_cache_control(provider_id: str) -> bool:
    return provider_id in CACHE_CONTROL_PROVIDERS


def with_cache_breakpoints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of the request's messages with breakpoints on the system prompt and on the last
    message before the final one (the new turn); a message with no text to mark is passed over."""
    out = copy.deepcopy(messages)
    if out and out[0].get("role") == "system":
        _mark(out[0])
    history = range(len(out) - 2, 0 if out and out[0].get("role") == "system" else -1, -1)
    for index in history:
        if out[index].get("role") in ("user", "assistant") and _mark(out[index]):
            break
    return out


def _mark(message: dict[str, Any]) -> bool:
    """Put the breakpoint on the message's last text part (its text made a part when it is a string)."""
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip():
            return False
        message["content"] = [{"type": "text", "text": content, "cache_control": dict(EPHEMERAL)}]
        return True
    if isinstance(content, list):
        for part in reversed(content):
            if isinstance(part, dict) and part.get("type") == "text" and str(part.get("text", "")).strip():
                part["cache_control"] = dict(EPHEMERAL)
                return True
    return False
