"""LatestFile: one write at a time, off the loop, and the latest state is the one left on disk."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from desktop_app.services.latest_file import LatestFile
from desktop_app.services.paths import write_atomically


class HeldWrites:
    """Real atomic writes of a file; the first one waits until the test lets it go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = threading.Event()
        self.go = threading.Event()
        self.written: list[bytes] = []
        self.at_once = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self._lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            self.started.set()
            assert self.go.wait(30)
            write_atomically(self.path, data)
            self.written.append(data)
        finally:
            with self._lock:
                self.at_once -= 1


@pytest.mark.asyncio
async def test_states_put_during_a_write_are_written_after_it_the_latest_last(tmp_path: Path) -> None:
    writes = HeldWrites(tmp_path / "kept.json")
    file = LatestFile(writes, name="test:kept")
    file.put(b"1")
    assert await asyncio.to_thread(writes.started.wait, 30)  # the first write is under way
    file.put(b"2")
    file.put(b"3")  # 2 is never written: 3 replaces it before its turn
    writes.go.set()
    await file.aclose()
    assert writes.written == [b"1", b"3"] and writes.most_at_once == 1
    assert writes.path.read_bytes() == b"3"


def test_without_a_running_loop_the_write_is_at_once(tmp_path: Path) -> None:
    writes = HeldWrites(tmp_path / "kept.json")
    writes.go.set()
    LatestFile(writes, name="test:kept").put(b"now")
    assert writes.path.read_bytes() == b"now"
