"""Retrying one account after a passing failure: when, and how long to wait first.

Exponential backoff (base, 2 x base, 4 x base...) with a cap per wait and on the total; a server's
`retry-after` (seconds or an HTTP date, RFC 9110 section 10.2.3) is waited instead when it is given,
and a retry-after longer than the cap is not waited at all: the failure is said (or a pool moves on).
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass

from desktop_app.domain.errors import DomainError, RateLimited, ServerError, TimedOut, Unreachable

# Statuses worth asking again: overloaded or briefly failing (Anthropic's 529 is "overloaded").
RETRY_STATUSES = frozenset({500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2  # asked again at most this often (so 3 tries in all)
    base_s: float = 1.0
    max_wait_s: float = 20.0  # one wait; a longer retry-after is not waited
    max_total_s: float = 30.0  # all the waits of one reply

    def delay(self, retried: int, retry_after: float | None, waited_s: float = 0.0) -> float | None:
        """Seconds to wait before retry number `retried + 1`, or None: do not retry."""
        if retried >= self.retries:
            return None
        wait = retry_after if retry_after is not None else self.base_s * 2**retried
        if retry_after is None:
            wait = min(wait, self.max_wait_s)
        if wait > self.max_wait_s or waited_s + wait > self.max_total_s:
            return None
        return max(0.0, wait)


def retryable(error: DomainError) -> bool:
    """A failure that asking again may cure: a rate limit, an overloaded or failing server, a timeout,
    a connection that broke."""
    if isinstance(error, ServerError):
        return error.status is None or error.status in RETRY_STATUSES
    return isinstance(error, (RateLimited, TimedOut, Unreachable))


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """The `retry-after` header in seconds from `now` (unix time): a number of seconds or an HTTP
    date; None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
