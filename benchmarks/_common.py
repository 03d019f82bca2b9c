"""What the benchmarks share: a test server as a subprocess, the Qt loop's heartbeat, figures.

The heartbeat is a 10 ms PreciseTimer on the Qt loop that notes when each tick fires; how late a
tick is (its interval minus 10 ms) is how long the loop could not run. PySide6 is imported only
inside the functions that need it: benchmarks/stream.py imports LiteLLM before PySide6.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_S = 0.010
IDLE_WINDOW_S = 1.0


# --- a loopback test server (tests/servers) in its own process, so not under this GIL ---------


def start_server(module: str, *args: str, name: str) -> tuple[subprocess.Popen, int]:
    """Start ``python -m module *args`` in the repository root; ``name`` is for the error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("PORT="):
            raise RuntimeError(f"{name} said {line!r} instead of PORT=<n>")
        return proc, int(line.removeprefix("PORT="))
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # this child only, by its PID
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


# --- figures -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def overlapping_lateness(
    intervals: Iterable[tuple[float, float]], start: float = -float("inf"), end: float = float("inf")
) -> list[float]:
    """How late each heartbeat interval that overlaps [start, end] was."""
    return [max(0.0, b - a - HEARTBEAT_S) for a, b in intervals if b > start and a < end]


def lag_figures(lateness_s: list[float], prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}lag_p99_ms": percentile(lateness_s, 99) * 1e3,
        f"{prefix}lag_max_ms": max(lateness_s, default=0.0) * 1e3,
        f"{prefix}ticks": len(lateness_s),
    }


def print_figures(figures: dict[str, Any]) -> None:
    """The `key: value` lines every benchmark prints."""
    for key, value in figures.items():
        print(f"{key}: {value}")


# --- Qt ----------------------------------------------------------------------------------------


class QtHeartbeat:
    """The heartbeat timer on the Qt loop; ``ticks`` are the moments it fired."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        ticks: list[float] = []
        self.ticks = ticks
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(int(HEARTBEAT_S * 1000))
        self._timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    async def start(self) -> list[float]:
        """Start ticking; the lateness of the first IDLE_WINDOW_S, with nothing else to do.

        That is the lateness this (shared) machine adds. Its ticks are then forgotten, and a few
        more ticks pass before this returns, so the measured work starts on a running heartbeat.
        """
        self.ticks.clear()
        self._timer.start()
        await asyncio.sleep(IDLE_WINDOW_S)
        idle = self.lateness()
        self.ticks.clear()
        await asyncio.sleep(HEARTBEAT_S * 3)
        return idle

    async def last_tick(self) -> None:
        """Wait for the tick after the last block of work: it shows how late that block was."""
        await asyncio.sleep(HEARTBEAT_S * 5)

    def stop(self) -> None:
        self._timer.stop()

    def lateness(self, start: float = -float("inf"), end: float = float("inf")) -> list[float]:
        """How late each tick that overlaps [start, end] was."""
        return overlapping_lateness(itertools.pairwise(self.ticks), start, end)


def drops_none_references() -> bool:
    """PySide6 6.12.0 on Python 3.11 loses a reference to None on each call of a void method."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(1000):
        timer.setInterval(1)
    return sys.getrefcount(None) < before - 500
