"""A service event as a Qt signal owned by a widget: the one way the UI follows a service.

`ServiceEvent(owner, service.on_something)` subscribes, and emits `fired(value)` for each event. It
is a child of `owner`, so it goes when the owner goes, and it unsubscribes then: the service never
calls into a deleted widget, and never keeps one alive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

Unsubscribe = Callable[[], None]
Subscribe = Callable[[Callable[..., None]], Unsubscribe]


class ServiceEvent(QObject):
    # The event's value; None for an event that carries none (a slot may take no argument).
    fired = Signal(object)

    def __init__(self, owner: QObject, subscribe: Subscribe) -> None:
        super().__init__(owner)
        unsubscribe: Unsubscribe | None = subscribe(self._deliver)

        def end(*_args: object) -> None:
            nonlocal unsubscribe
            if unsubscribe is not None:
                unsubscribe, call = None, unsubscribe
                call()

        self._end = end
        self._subscribed = lambda: unsubscribe is not None
        # Plain functions, not methods of this object: they still run while it is being destroyed.
        owner.destroyed.connect(end)
        self.destroyed.connect(end)

    @property
    def subscribed(self) -> bool:
        return self._subscribed()

    def close(self) -> None:
        """Unsubscribe now and go: the owner follows another service, or is closing (twice is harmless)."""
        if self._subscribed():
            self._end()
            self.deleteLater()

    def _deliver(self, *args: Any) -> None:
        self.fired.emit(args[0] if args else None)


def follow(owner: QObject, subscribe: Subscribe, slot: Callable[..., None]) -> ServiceEvent:
    """Call `slot` (a method of `owner`) on each event until `owner` is destroyed; the event is returned
    for a `close()` before that."""
    event = ServiceEvent(owner, subscribe)
    event.fired.connect(slot)
    return event
