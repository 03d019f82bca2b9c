"""Garbage collection on the GUI thread only.

Python runs a cyclic collection on whichever thread happens to allocate past the threshold; here
that can be the LiteLLM engine thread or a store's worker. Freeing a QObject there makes Qt warn
("Timers cannot be stopped from another thread") or crash. So automatic collection is switched off
and a GUI-thread timer runs the generation the thresholds ask for, as CPython itself would.

The timer checks often (every 50 ms) so each collection stays small. While a reply streams,
LiteLLM keeps every chunk alive until the end, so an older-generation collection would rescan all
of them with the GIL held: during a stream only the youngest generation is collected, and the rest
waits until the stream is over.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadCollector(QObject):
    def __init__(self, interval_ms: int = 50, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._thresholds = gc.get_threshold()
        self._holds = 0

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()

    def hold_old_generations(self) -> None:
        """A stream started: collect only the youngest generation until `release`."""
        self._holds += 1

    def release_old_generations(self) -> None:
        self._holds = max(0, self._holds - 1)

    def check(self) -> None:
        counts = gc.get_count()
        if self._holds:
            if counts[0] > self._thresholds[0]:
                gc.collect(0)
            return
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return
