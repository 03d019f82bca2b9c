"""The organisation a key belongs to, as providers name it in response headers.

Only the documented shapes are taken: Anthropic's `anthropic-organization-id` is a UUID; OpenAI's
`openai-organization` is an organisation id (org-...) or its name (user-... for a personal one, or
a lower-case slug). A value that carries the key itself is never taken, whatever its shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_UUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_OPENAI = r"(?:org|user)-[A-Za-z0-9]{1,64}|(?!sk-)[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
SHAPES: dict[str, re.Pattern[str]] = {
    "anthropic-organization-id": re.compile(_UUID),
    "openai-organization": re.compile(_OPENAI),
}
_ANY_SHAPE = re.compile(f"{_UUID}|{_OPENAI}")


def is_organization_id(value: str) -> bool:
    """Whether `value` has the shape of an organisation id of some provider."""
    return _ANY_SHAPE.fullmatch(value) is not None


def carries_secret(value: str, secret: str | None) -> bool:
    """Whether `value` holds `secret`, or a long piece of it."""
    secret = (secret or "").strip()
    return bool(secret) and (secret in value or (len(value) >= 8 and value in secret))


def organization_from_headers(headers: Mapping[str, str], secret: str | None = None) -> str | None:
    """The organisation id in response headers (LiteLLM's `llm_provider-` prefix allowed), or None
    when there is none in a documented shape or it carries `secret`."""
    clean = {k.lower().removeprefix("llm_provider-"): v for k, v in headers.items()}
    for name, shape in SHAPES.items():
        value = str(clean.get(name) or "").strip()
        if value and shape.fullmatch(value) and not carries_secret(value, secret):
            return value
    return None
