"""One shape for service events: subscribing returns the function that unsubscribes.

Listeners are plain callables, called on the loop in the order they subscribed. One that raises is
logged and the others still hear the event; one unsubscribed while an event is being delivered
(by an earlier listener) does not hear it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

log = logging.getLogger(__name__)

P = ParamSpec("P")
Unsubscribe = Callable[[], None]


class Listeners(Generic[P]):
    def __init__(self, name: str) -> None:
        self._name = name
        self._listeners: dict[object, Callable[P, None]] = {}  # by token: one listener may subscribe twice

    def subscribe(self, listener: Callable[P, None]) -> Unsubscribe:
        """Call `listener` on every event until the returned function is called (twice is harmless)."""
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for token, listener in list(self._listeners.items()):
            if token not in self._listeners:
                continue
            try:
                listener(*args, **kwargs)
            except Exception:  # one listener's bug must not stop the service or the others
                log.exception("a listener of %s failed", self._name)

    def __len__(self) -> int:
        return len(self._listeners)
