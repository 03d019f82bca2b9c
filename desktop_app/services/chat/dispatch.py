"""Where a request goes: one account, or a pool of accounts with failover. Every attempt is recorded.

Why not LiteLLM's Router for pools: the Router does have cooldowns and fallbacks, but (1) its
streaming fallback restarts a stream that already produced text on another deployment
(MidStreamFallbackError), which must never happen silently here; (2) a 401 should mark that one
account broken until its key is fixed, not cool it down for a few seconds; (3) the user must see
which account answered and every attempt must land in the usage log with its own account, tokens
and error; and (4) budgets are per account. All of that is a short loop over LLMService, so the
Router is used where it fits best instead: the exported LiteLLM Proxy config (services/accounts/proxy_export.py).

Retries with backoff: a cloud account that fails before any text with a rate limit, an overloaded or
failing server, a timeout or a broken connection is asked again after a wait (domain/retries.py:
exponential, capped, or the server's retry-after), at most `Settings.request_retries` times; every
failed try is recorded. A pool does not retry: it moves on to its next account at once, as before
(another account is the quicker answer, and a rate-limited one cools down), and when none is left it
says when to come back. Local servers are not retried either: a local failure is said at once.

A llama-server that ModelDesk runs itself goes away for a moment while it restarts on another model.
A request to it then waits (with a notice) instead of failing: before an attempt when the restart is
already under way, and once more when a restart cut an attempt short before any text came. The
superseded attempt is not recorded; only the real outcome is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import (
    AttemptFailed,
    ChatMessage,
    ChatParams,
    Failed,
    Finished,
    Notice,
    ReasoningDelta,
    ReplyMetrics,
    ResponseHeaders,
    StreamEvent,
    TextDelta,
)
from desktop_app.domain.errors import (
    AuthFailed,
    ContextTooLong,
    DomainError,
    ModelNotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.domain.pools import Pool, Strategy, is_pool_id
from desktop_app.domain.retries import RetryPolicy, retry_after_s, retryable
from desktop_app.domain.routes import Route, is_route_id
from desktop_app.domain.settings import Settings
from desktop_app.domain.telemetry import Attempt
from desktop_app.domain.tools import ToolCallDelta
from desktop_app.domain.urls import is_loopback, with_scheme
from desktop_app.domain.usage import BudgetExceeded, BudgetLevel, UsageRecord, budget_level
from desktop_app.services.accounts import header_secrets
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat import preflight
from desktop_app.services.chat.llm import LLMService
from desktop_app.services.chat.routes import Run, route_refusal, stream_route

log = logging.getLogger(__name__)

# Errors after which a pool moves on to its next account (when no text has been shown yet).
FAILOVER_ERRORS = (RateLimited, ServerError, TimedOut, Unreachable, AuthFailed)
# What a restarting llama-server does to a request: its port is closed, or the new process answers 503.
RESTART_ERRORS = (Unreachable, ServerError)
# How long a request waits for a llama-server of ours to come back from a restart.
RESTART_WAIT_S = 60.0
# A key read from the keyring to check a request (at Send) is used to send it when that follows
# within this long: one keyring call per request, not one per check.
KEY_FRESH_S = 10.0


class AttemptObserver(Protocol):
    """Told of every attempt as it ends (services/telemetry.py `Telemetry`); `active` False: told nothing."""

    @property
    def active(self) -> bool: ...

    @property
    def include_content(self) -> bool: ...

    def record(self, attempt: Attempt) -> None: ...


class LocalServers(Protocol):
    """The llama-servers ModelDesk runs itself (services/local/llamacpp.py `LlamaCppService`), by base URL."""

    def restarting(self, url: str) -> bool:
        """A start, restart or model switch is under way at `url`."""
        ...

    def restarts(self, url: str) -> int:
        """How many have begun at `url`: a change tells of one that came and went meanwhile."""
        ...

    async def wait_ready(self, url: str, timeout: float) -> bool:
        """Wait for the restart under way; True when the server is running again."""
        ...


@dataclass(frozen=True, slots=True)
class _Request:
    """One account asked for the reply: what an attempt sends, and what its usage record says."""

    account: Account
    key: str | None
    model: str
    messages: Sequence[ChatMessage]
    params: ChatParams
    pool: Pool | None
    retries: int  # accounts of the pool (or attempts along the route) that failed before this one
    last: bool  # nothing comes after this one: no account of the pool, no target of the route
    backoff_retries: int = 0  # times this account was asked again (after a passing failure) before this try
    waited_s: float = 0.0  # the backoff waits so far
    trace_id: bytes = b""  # one per reply: its attempts' spans share it (telemetry export)
    route: Route | None = None

    @property
    def pool_id(self) -> str:
        """The pool in the usage record; for a lone account of a route, the route."""
        if self.pool:
            return self.pool.id
        return self.route.id if self.route else ""

    @property
    def moves_on(self) -> bool:
        """A failure before any text moves the request to the next account or target."""
        return (self.pool is not None or self.route is not None) and not self.last

    def metrics(self, metrics: ReplyMetrics) -> ReplyMetrics:
        """`metrics` with the account that answered and the retries before it."""
        return replace(
            metrics,
            account_id=self.account.id,
            account_label=self.account.label,
            retries=self.retries,
            backoff_retries=self.backoff_retries,
            route_label=self.route.label if self.route else "",
        )

    @property
    def may_retry(self) -> bool:
        """Backoff retries are for one cloud account; a pool or a route moves on instead."""
        return not self.account.provider.is_local and self.pool is None and self.route is None


@dataclass(frozen=True, slots=True)
class _Superseded:
    """A restart of our own llama-server cut the attempt short; it is back, so the account is asked again."""


@dataclass(frozen=True, slots=True)
class _RetryLater:
    """The attempt failed before any text with a passing failure: ask the same account again after `delay_s`."""

    delay_s: float
    error: DomainError


_WHY_RETRIED = {
    RateLimited: "is rate-limited",
    ServerError: "had a server error",
    TimedOut: "did not answer in time",
    Unreachable: "could not be reached",
}


def _retry_notice(request: _Request, retry: _RetryLater, allowed: int) -> Notice:
    why = next((said for kind, said in _WHY_RETRIED.items() if isinstance(retry.error, kind)), "failed")
    return Notice(
        f"“{request.account.label}” {why}; asking it again in {retry.delay_s:.0f} s "
        f"(retry {request.backoff_retries + 1} of {allowed})."
    )


def _restarting_notice(url: str) -> Notice:
    host = urlsplit(url).netloc.rpartition("@")[2] or url
    return Notice(f"llama-server at {host} is restarting with another model; the reply starts when it is ready.")


class Dispatcher:
    def __init__(
        self,
        *,
        llm: LLMService,
        secrets: SecretStore,
        states: AccountStates,
        settings: Callable[[], Settings],
        usage: UsageStore | None = None,
        timeout_s: Callable[[], float] = lambda: 60.0,
        local_servers: LocalServers | None = None,
        backoff: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        context_window: Callable[[Account, str], Awaitable[int | None]] | None = None,
        telemetry: AttemptObserver | None = None,
    ) -> None:
        """`backoff`: the waits between retries (its count comes from the settings); `sleep` waits them.
        `context_window`: what LiteLLM's map says a model of an account takes (None: unknown), for routes."""
        self._llm = llm
        self._secrets = secrets
        self._states = states
        self._settings = settings
        self._usage = usage
        self._timeout_s = timeout_s
        self._local_servers = local_servers
        self._backoff = backoff or RetryPolicy()
        self._sleep = sleep
        self.context_window = context_window
        self._telemetry = telemetry
        self._next_start: dict[str, int] = {}  # round-robin position per pool

    @property
    def states(self) -> AccountStates:
        return self._states

    def route(self, route_id: str) -> Route | None:
        return self._settings().route(route_id)

    def target_label(self, target_id: str) -> str:
        settings = self._settings()
        if is_route_id(target_id):
            route = settings.route(target_id)
            return route.label if route else ""
        if is_pool_id(target_id):
            pool = settings.pool(target_id)
            return pool.label if pool else ""
        account = settings.account(target_id)
        return account.label if account else ""

    def costs_nothing(self, target_id: str) -> bool:
        """Every account behind `target_id` is a local server (its provider's, or on the loopback)."""
        accounts, _pool, problem = self._targets(target_id)
        return problem is None and all(
            a.provider.is_local or is_loopback(urlsplit(with_scheme(a.effective_base_url)).hostname or "")
            for a in accounts
        )

    async def refusal(self, *, target_id: str, model: str, params: ChatParams) -> DomainError | None:
        """Why a request to `target_id` cannot be sent at all, or None. Nothing is planned, sent or
        recorded for it; a pool is refused only when none of its accounts could be sent it, a route when
        none of its targets could."""
        if is_route_id(target_id):
            return await route_refusal(self, target_id, params)
        problem: DomainError | None = preflight.no_model(target_id, model)
        if problem is None:
            accounts, pool, problem = self._targets(target_id)
        if problem is None:
            problem = preflight.params_refusal(params)
        if problem is not None:
            return problem
        refusals = []
        for account in accounts:
            refusal = preflight.account_refusal(account, await self._secrets.get(account.id, max_age_s=KEY_FRESH_S))
            if refusal is None:
                return None
            refusals.append(refusal)
        if pool is None:
            return refusals[0]
        return type(refusals[0])(
            f"No account in pool “{pool.label}” can be sent this request: {' '.join(r.message for r in refusals)}",
            refusals[0].action,
        )

    def plan(self, target_id: str) -> tuple[list[Account], Pool | None, DomainError | None]:
        members, pool, problem = self._targets(target_id)
        if pool is not None and members and pool.strategy is Strategy.ROUND_ROBIN:
            start = self._next_start.get(pool.id, 0) % len(members)
            self._next_start[pool.id] = start + 1
            members = members[start:] + members[:start]
        return members, pool, problem

    def _targets(self, target_id: str) -> tuple[list[Account], Pool | None, DomainError | None]:
        """The enabled accounts behind `target_id` in the pool's order, or why there are none."""
        settings = self._settings()
        if is_pool_id(target_id):
            pool = settings.pool(target_id)
            if pool is None:
                return (
                    [],
                    None,
                    ModelNotFound(
                        "The pool this conversation used no longer exists.",
                        "Pick another model or pool in the model picker.",
                    ),
                )
            members = [a for a in (settings.account(i) for i in pool.account_ids) if a is not None and a.enabled]
            if not members:
                return (
                    [],
                    pool,
                    ModelNotFound(
                        f"Pool “{pool.label}” has no enabled accounts.", "Add accounts to the pool in Accounts."
                    ),
                )
            return members, pool, None
        account = settings.account(target_id)
        if account is None:
            return (
                [],
                None,
                ModelNotFound(
                    "No model is selected for this conversation.", "Pick a model in the model picker, then send again."
                ),
            )
        if not account.enabled:
            return (
                [],
                None,
                ModelNotFound(
                    f"Account “{account.label}” is disabled.", "Enable it in Accounts, or pick another model."
                ),
            )
        return [account], None, None

    async def stream(
        self,
        *,
        target_id: str,
        model: str,
        messages: Sequence[ChatMessage],
        params: ChatParams,
        override_budget: bool = False,
    ) -> AsyncGenerator[StreamEvent, None]:
        if is_route_id(target_id):
            async for event in stream_route(self, target_id, messages, params, override_budget):
                yield event
            return
        # What cannot be sent is refused here too (the settings may have changed since the caller
        # asked `refusal`), and never recorded: no account was contacted.
        accounts, pool, problem = self.plan(target_id)
        if problem is None:
            problem = preflight.params_refusal(params)
        if problem is not None:
            yield Failed(problem)
            return
        run = Run()
        async for event in self.run_target(accounts, pool, model, messages, params, override_budget, run):
            yield event
        if run.outcome == "done":
            return
        soonest = min((self._states.cooling_for(a.id) for a in accounts), default=0.0)
        why = " ".join(run.skipped)
        assert pool is not None
        yield Failed(
            RateLimited(
                f"No account in pool “{pool.label}” can answer right now. {why}".strip(),
                f"Try again in {soonest:.0f} s, or add another account to the pool."
                if soonest
                else "Fix the accounts' keys or budgets in Accounts.",
                retry_after=soonest or None,
            )
        )

    async def run_target(
        self,
        accounts: list[Account],
        pool: Pool | None,
        model: str,
        messages: Sequence[ChatMessage],
        params: ChatParams,
        override_budget: bool,
        run: Run,
    ) -> AsyncGenerator[StreamEvent, None]:
        """One account, or a pool's accounts in turn; `run` says how it ended ("done", or "next": move on)
        and carries the failed attempts across the targets of a route."""
        run.outcome = "next"
        # An account the background check found down is skipped, unless all of them are: then try anyway.
        all_down = all(self._states.health(a.id).down for a in accounts)
        for position, account in enumerate(accounts):
            last = position == len(accounts) - 1 and run.last_target
            if pool is not None or run.route is not None:
                reason = self._unavailable(account, mind_down=not all_down)
                if reason and (pool is not None or not last):
                    run.skipped.append(reason)
                    if run.route is not None or self._states.health(account.id).down:
                        yield Notice(reason)
                    continue
            key = await self._secrets.get(account.id, max_age_s=KEY_FRESH_S)
            refusal = preflight.account_refusal(account, key)
            if refusal is not None:
                if pool is not None or not last:
                    run.skipped.append(f"“{account.label}” is skipped: {refusal.message}")
                    continue
                run.outcome = "done"
                yield Failed(refusal)
                return
            request = _Request(
                account, key, model, messages, params, pool, run.retries, last, route=run.route, trace_id=run.trace_id
            )
            level, budget_message = await self._budget(account)
            if level is BudgetLevel.EXCEEDED and not override_budget:
                error = BudgetExceeded(budget_message, "Raise the budget in Accounts, or send anyway.")
                if pool is not None or not last:
                    run.skipped.append(budget_message)
                    continue
                run.outcome = "done"
                await self._record(request, ReplyMetrics(), "refused", error)
                yield Failed(error)
                return
            if level is BudgetLevel.WARNING:
                yield Notice(budget_message)
            outcome = None
            async for event in self._ask(request):
                if isinstance(event, AttemptFailed):
                    run.retries += 1
                    run.error = event.error
                    outcome = "next"
                elif isinstance(event, (Finished, Failed)):
                    outcome = "done"
                yield event
            if outcome != "next":
                run.outcome = "done"
                return

    def _unavailable(self, account: Account, *, mind_down: bool = True) -> str:
        health = self._states.health(account.id)
        if health.broken:
            return f"“{account.label}” is skipped: {health.broken}"
        if health.down and mind_down:
            return f"“{account.label}” is skipped: the last health check found it down ({health.down})."
        cooling = self._states.cooling_for(account.id)
        if cooling > 0:
            return f"“{account.label}” is cooling down for {cooling:.0f} s more."
        return ""

    async def _ask(self, request: _Request) -> AsyncGenerator[StreamEvent, None]:
        """`_restartable` on one account, asked again after a backoff wait while a passing failure allows."""
        allowed = self._settings().request_retries
        while True:
            retry = None
            async for event in self._restartable(request):
                if isinstance(event, _RetryLater):
                    retry = event
                else:
                    yield event
            if retry is None:
                return
            yield _retry_notice(request, retry, allowed)
            await self._sleep(retry.delay_s)
            request = replace(
                request, backoff_retries=request.backoff_retries + 1, waited_s=request.waited_s + retry.delay_s
            )

    def _retry_delay(self, request: _Request, error: DomainError, headers: dict[str, str]) -> float | None:
        """Seconds to wait before asking the same account again, or None: no retry."""
        if not request.may_retry or not retryable(error):
            return None
        after = retry_after_s(headers, time.time())
        if after is None and isinstance(error, RateLimited):
            after = error.retry_after
        policy = replace(self._backoff, retries=self._settings().request_retries)
        return policy.delay(request.backoff_retries, after, request.waited_s)

    async def _restartable(self, request: _Request) -> AsyncGenerator[StreamEvent | _RetryLater, None]:
        """`_attempt` on one account; made once more when a restart of our own llama-server cut it short."""
        url = self._local_url(request.account)
        if url and self._restarting(url):
            yield _restarting_notice(url)
            if not await self._wait_for_restart(url):
                url = ""  # it did not come back: the attempt's own failure says why, without a second wait
        for watched in (url, ""):
            again = False
            async for event in self._attempt(request, watched):
                if isinstance(event, _Superseded):
                    again = True
                else:
                    yield event
            if not again:
                return

    async def _attempt(
        self, request: _Request, watched: str = ""
    ) -> AsyncGenerator[StreamEvent | _Superseded | _RetryLater, None]:
        """One request to `request.account`. `watched`: the URL of our own llama-server behind it; when a
        restart of it makes the request fail before any text, the attempt waits for it and ends `_Superseded`."""
        account = request.account
        sent_as = await header_secrets.resolved(self._secrets, account)
        produced = False
        done = False
        started = time.monotonic()
        restarts = self._restarts(watched)
        headers: dict[str, str] = {}
        observer = self._telemetry if self._telemetry is not None and self._telemetry.active else None
        started_ns = time.time_ns()
        reply: list[str] | None = [] if observer is not None and observer.include_content else None
        events = self._llm.stream_chat(
            account=sent_as,
            api_key=request.key,
            model=request.model,
            messages=request.messages,
            params=request.params,
            timeout_s=self._timeout_s(),
        )
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, ResponseHeaders):
                        headers = event.headers
                        self._states.record_headers(account.id, event.headers, secret=request.key)
                    elif isinstance(event, (TextDelta, ReasoningDelta, ToolCallDelta)):
                        produced = True
                        if reply is not None and isinstance(event, TextDelta):
                            reply.append(event.text)
                    elif isinstance(event, Finished):
                        done = True
                        self._states_ok(account)
                        metrics = request.metrics(event.metrics)
                        await self._record(request, metrics, "ok")
                        self._observe(observer, request, started_ns, metrics, "ok", reply, event.finish_reason)
                        yield Finished(event.finish_reason, metrics)
                        return
                    elif isinstance(event, Failed):
                        error = event.error
                        if not produced and self._cut_by_restart(watched, restarts, error):
                            if self._restarting(watched):
                                yield _restarting_notice(watched)
                            if await self._wait_for_restart(watched):
                                done = True  # superseded by the next attempt: not recorded
                                yield _Superseded()
                                return
                        done = True
                        self._note_failure(account, error, along_route=request.route is not None)
                        metrics = request.metrics(event.metrics)
                        await self._record(request, metrics, "failed", error)
                        self._observe(observer, request, started_ns, metrics, "failed", reply, error=error)
                        delay = None if produced else self._retry_delay(request, error, headers)
                        if delay is not None:
                            yield _RetryLater(delay, error)
                        elif not produced and request.moves_on and isinstance(error, self._moves_on(request)):
                            route = request.route.label if request.route else ""
                            yield AttemptFailed(account.id, account.label, error, metrics, route_label=route)
                        else:
                            yield Failed(error, metrics)
                        return
                    yield event
        finally:
            if not done:  # stopped by the user (or the window closed) mid-reply
                metrics = request.metrics(ReplyMetrics(latency_s=time.monotonic() - started))
                await self._record(request, metrics, "stopped")
                self._observe(observer, request, started_ns, metrics, "stopped", reply)

    def _observe(
        self,
        observer: AttemptObserver | None,
        request: _Request,
        started_ns: int,
        metrics: ReplyMetrics,
        status: str,
        reply: list[str] | None,
        finish_reason: str = "",
        error: DomainError | None = None,
    ) -> None:
        """Tell the observer (telemetry export) of an attempt that ended; content only when it asked."""
        if observer is None:
            return
        account = request.account
        attempt = Attempt(
            provider_id=account.provider_id,
            account_id=account.id,
            account_label=account.label,
            base_url=account.effective_base_url,
            model=request.model,
            params=request.params,
            status=status,
            start_ns=started_ns,
            end_ns=time.time_ns(),
            metrics=metrics,
            finish_reason=finish_reason,
            error_kind=error.kind if error else "",
            messages=request.messages if reply is not None else (),
            reply="".join(reply or ()),
            trace_id=request.trace_id,
        )
        try:
            observer.record(attempt)
        except Exception:  # telemetry must never break a chat
            log.warning("could not record the attempt for telemetry export", exc_info=True)

    # --- our own llama-servers, restarting ---------------------------------------------------------

    def _local_url(self, account: Account) -> str:
        """The base URL of a llama-server account when ModelDesk may be running that server, else ""."""
        if self._local_servers is None or account.provider_id != "llamacpp":
            return ""
        return account.effective_base_url

    def _restarting(self, url: str) -> bool:
        return self._local_servers is not None and bool(url) and self._local_servers.restarting(url)

    def _restarts(self, url: str) -> int:
        return self._local_servers.restarts(url) if self._local_servers is not None and url else 0

    def _cut_by_restart(self, url: str, restarts_before: int, error: DomainError) -> bool:
        """Did a restart (under way, or begun and ended since the attempt started) cause `error`?"""
        return (
            bool(url)
            and isinstance(error, RESTART_ERRORS)
            and (self._restarting(url) or self._restarts(url) != restarts_before)
        )

    async def _wait_for_restart(self, url: str) -> bool:
        """True once the server at `url` is back; at once when the restart has already ended."""
        if self._local_servers is None or not self._local_servers.restarting(url):
            return True
        return await self._local_servers.wait_ready(url, RESTART_WAIT_S)

    @staticmethod
    def _moves_on(request: _Request) -> tuple[type[DomainError], ...]:
        # Along a route a context too long moves on too (routes.py picks a target with a larger window),
        # and so does a 403, as a 401 does.
        return (*FAILOVER_ERRORS, ContextTooLong, PermissionDenied) if request.route is not None else FAILOVER_ERRORS

    def _states_ok(self, account: Account) -> None:
        if self._states.health(account.id).broken:
            self._states.clear(account.id)

    def _note_failure(self, account: Account, error: DomainError, *, along_route: bool = False) -> None:
        if isinstance(error, RateLimited):
            self._states.cool_down(account.id, error.retry_after)
        elif isinstance(error, AuthFailed):
            self._states.mark_broken(account.id, "The provider rejected this account's key; fix it in Accounts.")
        elif isinstance(error, PermissionDenied) and along_route:  # a route moves on from a 403 as from a 401
            self._states.mark_broken(account.id, "The provider refused this account access; fix it in Accounts.")

    async def _budget(self, account: Account) -> tuple[BudgetLevel, str]:
        if self._usage is None or (account.daily_budget_tokens is None and account.daily_budget_usd is None):
            return BudgetLevel.OK, ""
        tokens, cost = await self._usage.today(account.id)
        return budget_level(tokens, cost, account)

    async def _record(
        self, request: _Request, metrics: ReplyMetrics, status: str, error: DomainError | None = None
    ) -> None:
        if self._usage is None:
            return
        record = UsageRecord.from_metrics(
            metrics,
            at=time.time(),
            account_id=request.account.id,
            model=request.model,
            status=status,
            error_kind=error.kind if error else "",
            retries=request.retries,
            pool_id=request.pool_id,
        )
        try:
            await self._usage.record(record)
        except Exception:  # the usage log must never break a chat
            log.warning("could not record usage", exc_info=True)
