"""The optional background health check: every account's model listing every N minutes
(`Settings.health_check_minutes`, 0 = off, the default), never a paid call.

The verdict goes to AccountStates (`down`): the Accounts pane shows it on the account's dot, and pools
and routes skip an account found down unless every one is. One task, owned by the app and cancelled at quit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.state import AccountStates

log = logging.getLogger(__name__)


class HealthChecks:
    def __init__(
        self,
        *,
        accounts: AccountService,
        states: AccountStates,
        settings: Callable[[], Settings],
        interval_s: Callable[[], float] | None = None,
    ) -> None:
        """`interval_s`: seconds between rounds, 0 = off; by default the settings' minutes."""
        self._accounts = accounts
        self._states = states
        self._settings = settings
        self._interval_s = interval_s or (lambda: 60.0 * self._settings().health_check_minutes)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0  # rounds completed, for the curious (and tests)

    async def check_all(self) -> None:
        """One round: each enabled chat account with what it needs to be asked, one after another."""
        for account in self._accounts.accounts:
            if not account.enabled or not account.provider.chat:
                continue
            if account.provider.key_required and not await self._accounts.has_key(account.id):
                continue
            problem = await self._accounts.probe(account)
            self._states.set_down(account.id, problem.message if problem is not None else "")
        self.rounds += 1

    def settings_changed(self) -> None:
        """The interval may have changed: start the next wait over (or stop waiting, when turned off)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="health checks")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            interval = self._interval_s()
            self._wake.clear()
            if interval <= 0:
                await self._wake.wait()  # off: until the setting changes
                continue
            try:
                await self.check_all()
            except Exception:  # a check must never end the loop
                log.warning("health check round failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
