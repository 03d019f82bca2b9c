"""A request along a route: its targets in order, each an account or a pool (which runs its own failover
first), through the Dispatcher's attempt loop.

The request moves to the next target when one cannot answer before any text came: unreachable, timed
out, rate-limited, a server error, a rejected key (that account is marked as a pool marks it), or a
context too long. After a context too long the targets whose model is known to take no more than the
one that refused are skipped (LiteLLM's map, through the catalog). A target whose accounts the
background health check found down is skipped, unless every target is down: then all are tried anyway.
Every move is a notice on the reply and a usage record of the account that failed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatMessage, ChatParams, Failed, Notice, StreamEvent
from desktop_app.domain.errors import ContextTooLong, DomainError, ModelNotFound
from desktop_app.domain.pools import Pool
from desktop_app.domain.routes import Route, RouteTarget

if TYPE_CHECKING:
    from desktop_app.services.chat.dispatch import Dispatcher


@dataclass(slots=True)
class Run:
    """How a pass over one target's accounts ended, and what carries from one target of a route to the next."""

    route: Route | None = None
    last_target: bool = True  # no target of the route comes after this one
    retries: int = 0  # failed attempts so far
    outcome: str = ""  # "done" (answered or failed for good) or "next" (move on)
    error: DomainError | None = None  # the latest attempt's failure
    skipped: list[str] = field(default_factory=list)
    trace_id: bytes = field(default_factory=lambda: os.urandom(16))  # the reply's: its attempts' spans share it


@dataclass(frozen=True, slots=True)
class _Planned:
    target: RouteTarget
    accounts: list[Account]
    pool: Pool | None

    @property
    def label(self) -> str:
        where = self.pool.label if self.pool else self.accounts[0].label
        return f"{self.target.model} on “{where}”"


def _missing(route_id: str) -> ModelNotFound:
    return ModelNotFound(
        "The route this conversation used no longer exists.", "Pick another model or route in the model picker."
    )


async def route_refusal(dispatcher: Dispatcher, route_id: str, params: ChatParams) -> DomainError | None:
    """Why nothing along the route could be sent this request, or None: one target that could is enough."""
    route = dispatcher.route(route_id)
    if route is None:
        return _missing(route_id)
    refusals = []
    for target in route.targets:
        problem = await dispatcher.refusal(target_id=target.target_id, model=target.model, params=params)
        if problem is None:
            return None
        refusals.append(problem)
    if not refusals:
        return ModelNotFound(f"Route “{route.label}” has no targets.", "Add targets to it in Accounts.")
    return type(refusals[0])(
        f"No target of route “{route.label}” can be sent this request: {' '.join(r.message for r in refusals)}",
        refusals[0].action,
    )


async def stream_route(
    dispatcher: Dispatcher,
    route_id: str,
    messages: Sequence[ChatMessage],
    params: ChatParams,
    override_budget: bool,
) -> AsyncGenerator[StreamEvent, None]:
    route = dispatcher.route(route_id)
    if route is None:
        yield Failed(_missing(route_id))
        return
    planned: list[_Planned] = []
    for target in route.targets:
        accounts, pool, problem = dispatcher.plan(target.target_id)
        if problem is None:
            planned.append(_Planned(target, accounts, pool))
        else:
            yield Notice(f"Route “{route.label}”: a target is skipped: {problem.message}")
    if not planned:
        yield Failed(ModelNotFound(f"Route “{route.label}” has no usable targets.", "Add targets to it in Accounts."))
        return
    all_down = all(_down(dispatcher, p) for p in planned)
    run = Run(route=route)
    refused_window: int | None = None  # after a context too long: the window a target must pass
    for position, step in enumerate(planned):
        if not all_down and _down(dispatcher, step):
            down = dispatcher.states.health(step.accounts[0].id).down
            reason = f"{step.label} is skipped: the last health check found it down ({down})."
            run.skipped.append(reason)
            yield Notice(reason)
            continue
        if refused_window is not None:
            window = await _window(dispatcher, step)
            if window is not None and window <= refused_window:
                reason = f"{step.label} is skipped: it takes {window:,} tokens, no more than the model that refused."
                run.skipped.append(reason)
                yield Notice(reason)
                continue
        run.last_target = position == len(planned) - 1
        async for event in dispatcher.run_target(
            step.accounts, step.pool, step.target.model, messages, params, override_budget, run
        ):
            yield event
        if run.outcome == "done":
            return
        if isinstance(run.error, ContextTooLong):
            window = await _window(dispatcher, step)
            if window is not None:
                refused_window = max(window, refused_window or 0)
    yield Failed(_nothing_answered(route, run))


def _down(dispatcher: Dispatcher, step: _Planned) -> bool:
    return all(dispatcher.states.health(a.id).down for a in step.accounts)


async def _window(dispatcher: Dispatcher, step: _Planned) -> int | None:
    if dispatcher.context_window is None:
        return None
    return await dispatcher.context_window(step.accounts[0], step.target.model)


def _nothing_answered(route: Route, run: Run) -> DomainError:
    why = " ".join(run.skipped)
    message = f"No target of route “{route.label}” could answer. {why}".strip()
    if run.error is None:
        return ModelNotFound(message, "Check the route's targets in Accounts.")
    return replace(run.error, message=f"{message} The last one said: {run.error.message}")
