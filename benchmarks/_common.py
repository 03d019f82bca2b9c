"""What the benchmarks share: a test server as a subprocess, the whole app on a qasync loop, the Qt
loop's heartbeat, figures.

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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_S = 0.010
IDLE_WINDOW_S = 1.0
A = TypeVar("A")
B = TypeVar("B")


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


def side_by_side(runs: int, first: Callable[[], A], second: Callable[[], B]) -> tuple[list[A], list[B]]:
    """Each side once as a warm-up (not kept), then `runs` measurements of each, taking turns at
    going first (`first` on even runs), so both see the same load."""
    first()
    second()
    firsts: list[A] = []
    seconds: list[B] = []
    for run in range(runs):
        if run % 2 == 0:
            firsts.append(first())
            seconds.append(second())
        else:
            seconds.append(second())
            firsts.append(first())
    return firsts, seconds


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


def qasync_loop(qt_app):
    """qasync's loop with asyncio's async-generator hooks on this thread, as desktop_app/__main__.py
    sets them (qasync's run_forever does not): an async generator left unfinished is closed on the
    loop instead of complaining when it is collected."""
    import qasync

    loop = qasync.QEventLoop(qt_app)
    sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook, finalizer=loop._asyncgen_finalizer_hook)
    return loop


class BenchApp:
    """The real ModelDeskApp (every service, the main window) on a qasync loop, keys kept in memory.

    Set up as desktop_app/__main__.py does (garbage collected on the GUI thread only). `first_text`
    is when the first text of the latest reply reached the transcript; clear it before each send.
    """

    def __init__(self, timeout_s: float) -> None:
        from PySide6.QtWidgets import QApplication

        from desktop_app.app import ModelDeskApp
        from desktop_app.services.accounts.secrets import SecretStore
        from desktop_app.services.paths import AppPaths
        from desktop_app.ui.common.gc import MainThreadCollector
        from tests.memory_keyring import MemoryKeyring

        self.timeout_s = timeout_s
        self.qt_app = QApplication.instance() or QApplication(sys.argv[:1])
        self.collector = MainThreadCollector()
        self.collector.start()
        self.loop = qasync_loop(self.qt_app)
        self.app = ModelDeskApp(
            paths=AppPaths.from_environment(),
            secrets=SecretStore(backend=MemoryKeyring()),
            collector=self.collector,
            offer_env_import=False,
        )
        self.first_text: float | None = None
        transcript = self.app.chat_pane.transcript
        append_text = transcript.append_text

        def timed_append_text(text: str) -> None:
            if self.first_text is None:
                self.first_text = time.perf_counter()
            append_text(text)

        transcript.append_text = timed_append_text

    def run(self, coro):
        """Run `coro` to its end on the app's loop, within the time-out."""
        asyncio.set_event_loop(self.loop)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, self.timeout_s))
        finally:
            asyncio.set_event_loop(None)

    async def start(self) -> None:
        """Show the window, wait for its first paint, start the app and load LiteLLM."""
        app = self.app
        painted = asyncio.Event()
        app.window.first_painted.connect(painted.set)
        app.window.show()
        await painted.wait()
        await app.start()
        # An automatic title is one more request after a conversation's first reply (to a loopback
        # server, so on by default): it would run into the next measured stream.
        await app.settings.update(auto_titles="off")
        await app.engine.litellm()

    def shut_down(self) -> None:
        """Close the app, then its loop (which ends the loop's worker QThreads before Qt goes)."""
        self.run(self._close())
        self.loop.close()

    async def _close(self) -> None:
        await self.app.aclose()
        self.app.window.close()
        self.collector.stop()


def drops_none_references() -> bool:
    """PySide6 6.12.0 on Python 3.11 loses a reference to None on each call of a void method."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(1000):
        timer.setInterval(1)
    return sys.getrefcount(None) < before - 500
