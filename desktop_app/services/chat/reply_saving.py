"""Keeping a streaming reply's text safe: timed partial saves, and the held changes' file format.

`PartialSaver` writes the partial reply at most `interval` seconds after text arrived, on a timer
of its own; `changes_to_json` / `changes_from_json` turn the changes a store refused into the
spill file's JSON and back (checked: anything else is refused).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from desktop_app.domain.chat import ReplyMetrics
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.errors import StorageFailed
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.tools import ToolCall


class PartialSaver:
    """Writes the partial reply `interval` seconds after the first text not yet written arrived."""

    def __init__(
        self,
        save: Callable[..., Awaitable[StorageFailed | None]],
        message_id: int,
        text: list[str],
        reasoning: list[str],
        interval: float,
    ) -> None:
        self._save, self._id, self._text, self._reasoning = save, message_id, text, reasoning
        self._interval = interval
        self._unsaved_since: float | None = None
        self._held: dict[str, Any] = {}  # other changes, written with the next write
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        if self._unsaved_since is None:
            self._unsaved_since = time.monotonic()
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"chat:save:{self._id}")

    def hold(self, **changes: Any) -> None:
        """Write `changes` with the next timed write (at most `interval` from now) or the last one."""
        self._held.update(changes)
        self.changed()

    def _take_held(self) -> dict[str, Any]:
        held, self._held = self._held, {}
        return held

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            assert self._unsaved_since is not None
            delay = self._unsaved_since + self._interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._dirty.clear()
            self._unsaved_since = None
            # A store that refuses holds the text in memory (ChatService._save); the stream goes on.
            await self._save(
                self._id, content="".join(self._text), reasoning="".join(self._reasoning), **self._take_held()
            )

    async def stop(self) -> None:
        """No more timed writes; one already asked for still happens (the store shields it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._unsaved_since = None

    async def finish(self, status: MessageStatus, **changes: Any) -> None:
        """The reply's last write: timed writes stop, then all its text is saved with `status`."""
        await self.stop()
        await self._save(
            self._id,
            content="".join(self._text),
            reasoning="".join(self._reasoning),
            status=status,
            **{**self._take_held(), **changes},
        )


def changes_to_json(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "status" in out:
        out["status"] = MessageStatus(out["status"]).value
    if isinstance(out.get("metrics"), ReplyMetrics):
        out["metrics"] = out["metrics"].to_json()
    if "tool_calls" in out:
        out["tool_calls"] = [c.to_json() for c in out["tool_calls"]]
    if isinstance(out.get("request"), SentRequest):
        out["request"] = out["request"].to_json()  # every message inline: the file is for the next start only
    return out


def changes_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """The fields `ConversationStore.update_message` takes, checked: anything else is refused."""
    allowed = {"content", "reasoning", "status", "metrics", "error", "request", "tool_calls"}
    if not isinstance(data, dict) or not set(data) <= allowed:
        raise ValueError(f"unexpected fields {sorted(set(data) - allowed) if isinstance(data, dict) else data!r}")
    changes = dict(data)
    if "status" in changes:
        changes["status"] = MessageStatus(changes["status"])
    if "metrics" in changes:
        changes["metrics"] = ReplyMetrics.from_json(changes["metrics"])
    if "tool_calls" in changes:
        changes["tool_calls"] = tuple(ToolCall.from_json(c) for c in changes["tool_calls"])
    if "request" in changes and (request := SentRequest.from_json(changes.pop("request"))) is not None:
        changes["request"] = request  # one this build cannot read only loses its "View as code"
    for key in ("content", "reasoning", "error"):
        if key in changes and not isinstance(changes[key], str):
            raise ValueError(f"{key} is not text")
    return changes
