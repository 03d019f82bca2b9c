"""A file that keeps the latest state of something, written off the GUI thread.

Each write replaces the whole file (atomically, with an fsync). Writes run one at a time on a worker
thread, and a state put while one is under way is written after it: two writes started at once on
two pool threads could finish in either order, leaving the older state on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LatestFile:
    def __init__(self, write: Callable[[bytes], None], *, name: str) -> None:
        self._write = write  # blocking; reports its own errors (a cache that could not be kept is logged)
        self._name = name
        self._unwritten: bytes | None = None
        self._writer: asyncio.Task[None] | None = None

    def put(self, data: bytes) -> None:
        """Keep `data`: on a worker thread when a loop runs (an fsync must not hold up the window),
        else at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(data)
            return
        self._unwritten = data
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_unwritten(), name=self._name)

    async def _write_unwritten(self) -> None:
        while (data := self._unwritten) is not None:
            self._unwritten = None
            await asyncio.to_thread(self._write, data)

    async def aclose(self) -> None:
        """Quitting: what was put and is not yet on disk is written."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
