"""The rate-limit headers providers send, read into one shape.

Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}
(reset as RFC 3339). OpenAI and most OpenAI-style servers: x-ratelimit-{limit,remaining,reset}-
{requests,tokens} (reset as a duration like "6m0s" or "1.5s"). LiteLLM passes provider headers on
with an `llm_provider-` prefix, which is stripped here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from desktop_app.domain.organizations import organization_from_headers

_PREFIX = "llm_provider-"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


@dataclass(frozen=True, slots=True)
class Limit:
    limit: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None  # UTC


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    limits: dict[str, Limit] = field(default_factory=dict)  # "requests", "tokens", "input-tokens"...
    organization_id: str | None = None
    seen_at: datetime | None = None

    def summary(self, now: datetime | None = None) -> str:
        """e.g. "requests 49/50 (resets in 12 s) · tokens 39,000/40,000"."""
        now = now or datetime.now(UTC)
        parts = []
        for name in ("requests", "tokens", "input-tokens", "output-tokens"):
            item = self.limits.get(name)
            if item is None or item.remaining is None:
                continue
            text = f"{name} {item.remaining:,}" + (f"/{item.limit:,}" if item.limit is not None else "")
            if item.resets_at is not None:
                seconds = max(0, int((item.resets_at - now).total_seconds()))
                text += f" (resets in {seconds} s)"
            parts.append(text)
        return " · ".join(parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _reset(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    match = _DURATION.match(value)
    if match and any(match.groups()):
        hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
        return now + timedelta(hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis)
    try:
        return now + timedelta(seconds=float(value))
    except ValueError:
        return None


def parse_rate_limit_headers(
    headers: Mapping[str, str], now: datetime | None = None, secret: str | None = None
) -> RateLimitSnapshot | None:
    """A snapshot from response headers, or None when they carry no rate-limit information.
    `secret`: the key the request was sent with, never taken for the organisation."""
    now = now or datetime.now(UTC)
    clean = {k.lower().removeprefix(_PREFIX): v for k, v in headers.items()}
    fields: dict[str, dict[str, str]] = {}
    for key, value in clean.items():
        if key.startswith("anthropic-ratelimit-"):
            rest = key.removeprefix("anthropic-ratelimit-")
            name, _, what = rest.rpartition("-")
            if name and what in ("limit", "remaining", "reset"):
                fields.setdefault(name, {})[what] = value
        elif key.startswith("x-ratelimit-"):
            rest = key.removeprefix("x-ratelimit-")
            what, _, name = rest.partition("-")
            if name and what in ("limit", "remaining", "reset"):
                fields.setdefault(name, {}).setdefault(what, value)  # Anthropic's own names win
    limits = {
        name: Limit(_int(parts.get("limit")), _int(parts.get("remaining")), _reset(parts.get("reset"), now))
        for name, parts in fields.items()
    }
    organization = organization_from_headers(clean, secret)
    if not limits and not organization:
        return None
    return RateLimitSnapshot(limits=limits, organization_id=organization, seen_at=now)
