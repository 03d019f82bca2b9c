"""Garbage collection on the GUI thread only.

Python runs a cyclic collection on whichever thread happens to allocate past the threshold; here
that can be the LiteLLM engine thread or a store's worker. Freeing a QObject there makes Qt warn
("Timers cannot be stopped from another thread") or crash. So automatic collection is switched off
and a GUI-thread timer runs the generation the thresholds ask for, as CPython itself would.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadCollector(QObject):
    def __init__(self, interval_ms: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._thresholds = gc.get_threshold()

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()

    def check(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return
