"""Quitting in order within a time limit: the named steps run one after another until it runs out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence


async def close_in_order(
    steps: Sequence[tuple[str, Callable[[], Awaitable[object]]]], *, timeout_s: float, log: logging.Logger
) -> list[str]:
    """Run `steps` in order; a step failing is logged and the next one runs.

    A step still running at `timeout_s` is cancelled and abandoned with the steps after it; their
    names are logged and returned ([] when everything finished).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    for index, (name, step) in enumerate(steps):
        task = asyncio.ensure_future(step())
        done, _pending = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        if not done:
            # Not awaited after the cancel: a step deaf to it would hold the quit forever.
            task.cancel()
            abandoned = [name for name, _step in steps[index:]]
            log.warning(
                "quitting: gave up after %g s waiting for %s; abandoned: %s", timeout_s, name, ", ".join(abandoned)
            )
            return abandoned
        if not task.cancelled() and task.exception() is not None:
            log.error("quitting: %s failed", name, exc_info=task.exception())
    return []
