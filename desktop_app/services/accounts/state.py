"""Live state per account: cooling down after a rate limit, broken after a 401, down after a failed
background health check, latest rate limits.

In memory for the session (a cooldown or a broken key outlives nothing but the app); the UI reads
it through plain listeners.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from desktop_app.domain.ratelimits import RateLimitSnapshot, parse_rate_limit_headers
from desktop_app.services.events import Listeners, Unsubscribe

DEFAULT_COOLDOWN_S = 30.0  # when a provider says "slow down" without saying for how long


@dataclass(slots=True)
class AccountHealth:
    cooldown_until: float = 0.0  # time.monotonic()
    broken: str = ""  # why, in one sentence; "" when fine
    down: str = ""  # why the last background health check failed; "" when it passed or none ran
    rate_limits: RateLimitSnapshot | None = None


class AccountStates:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._health: dict[str, AccountHealth] = {}
        self._listeners: Listeners[[str]] = Listeners("account state changed")

    def on_changed(self, listener: Callable[[str], None]) -> Unsubscribe:
        """`listener(account_id)` when that account's health or rate limits change."""
        return self._listeners.subscribe(listener)

    def _changed(self, account_id: str) -> None:
        self._listeners.emit(account_id)

    def health(self, account_id: str) -> AccountHealth:
        return self._health.setdefault(account_id, AccountHealth())

    def cooling_for(self, account_id: str) -> float:
        """Seconds left of this account's cooldown (0 when it may be used)."""
        return max(0.0, self.health(account_id).cooldown_until - self._clock())

    def cool_down(self, account_id: str, seconds: float | None) -> None:
        self.health(account_id).cooldown_until = self._clock() + (seconds or DEFAULT_COOLDOWN_S)
        self._changed(account_id)

    def mark_broken(self, account_id: str, reason: str) -> None:
        self.health(account_id).broken = reason
        self._changed(account_id)

    def set_down(self, account_id: str, reason: str) -> None:
        """The background health check's verdict: `reason` why it is down, or "" when it answered."""
        if self.health(account_id).down != reason:
            self.health(account_id).down = reason
            self._changed(account_id)

    def clear(self, account_id: str) -> None:
        """A new key or a successful check: forget cooldown and breakage."""
        health = self.health(account_id)
        health.broken, health.cooldown_until, health.down = "", 0.0, ""
        self._changed(account_id)

    def record_headers(
        self, account_id: str, headers: Mapping[str, str], secret: str | None = None
    ) -> RateLimitSnapshot | None:
        snapshot = parse_rate_limit_headers(headers, secret=secret)
        if snapshot is not None:
            self.health(account_id).rate_limits = snapshot
            self._changed(account_id)
        return snapshot

    def status_text(self, account_id: str) -> str:
        """One line for the Accounts pane: broken, cooling, or the latest rate limits."""
        health = self.health(account_id)
        if health.broken:
            return health.broken
        if health.down:
            return f"Down at the last health check: {health.down}"
        cooling = self.cooling_for(account_id)
        if cooling > 0:
            return f"Rate-limited: cooling down for {cooling:.0f} s more."
        if health.rate_limits is not None:
            return health.rate_limits.summary()
        return ""
