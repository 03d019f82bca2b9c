"""The one owner of the settings: every change goes through `update` and lands on disk in order.

A change is applied to the latest settings in one step, with no await between reading and
replacing them, so two updates queued together both land; the file is written atomically by the
SettingsStore's single worker, in the order the changes were made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from desktop_app.domain.settings import Settings
from desktop_app.services.settings_store import SettingsStore

# Told the latest settings and the names of the fields this change touched.
SettingsListener = Callable[[Settings, frozenset[str]], None]


class SettingsService:
    def __init__(self, *, store: SettingsStore, settings: Settings | None = None) -> None:
        self._store = store
        self._current = settings if settings is not None else Settings()
        self._listeners: list[SettingsListener] = []

    @property
    def current(self) -> Settings:
        return self._current

    def on_changed(self, listener: SettingsListener) -> Callable[[], None]:
        """Call `listener` after each change (once its write is done); returns the function that
        stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def update(self, **changes: Any) -> Settings:
        """Set the named fields on the latest settings and write them. Raises TypeError for a name
        the settings do not have and ValueError for a value they refuse (nothing is changed)."""
        unknown = sorted(set(changes) - set(Settings.model_fields))
        if unknown:
            raise TypeError(f"The settings have no {', '.join(unknown)}.")
        return await self.update_with(lambda s: Settings.model_validate({**dict(s), **changes}))

    async def update_with(self, change: Callable[[Settings], Settings]) -> Settings:
        """Replace the settings by `change(latest)` and write them; for edits that depend on what
        is there (an account added to the list, say)."""
        before = self._current
        self._current = after = change(before)
        try:
            # save_async encodes and queues the write before its first await: writes keep this order.
            await self._store.save_async(after)
        finally:
            # Told even when the write failed or its caller was cancelled: `current` has changed.
            changed = frozenset(n for n in Settings.model_fields if getattr(before, n) != getattr(after, n))
            for listener in list(self._listeners):
                listener(self._current, changed)
        return after

    async def save(self) -> None:
        """Write the settings as they are (after the store learned to leave something out, say)."""
        await self._store.save_async(self._current)
