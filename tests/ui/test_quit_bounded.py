"""Quitting is bounded: a step that does not finish in time is abandoned and named in the log."""

from __future__ import annotations

import asyncio
import logging

from desktop_app.app import ModelDeskApp
from desktop_app.services.paths import AppPaths
from tests.ui.conftest import run


async def _deaf_to_cancel(release: asyncio.Event) -> None:
    """Work that ignores being cancelled until `release` is set (as a stuck call would)."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


def test_a_step_that_hangs_is_abandoned_and_named_and_the_rest_listed(qtbot, qloop, caplog):
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    release = asyncio.Event()
    app.tasks.spawn(_deaf_to_cancel(release), name="stuck")
    try:
        with caplog.at_level(logging.WARNING, logger="desktop_app.app"):
            caplog.clear()
            abandoned = run(qtbot, app.aclose(timeout_s=0.5))

        assert abandoned[:4] == ["background tasks", "model lists", "last conversation", "conversation store"]
        assert abandoned[-1] == "LiteLLM engine"
        [line] = [
            r.getMessage() for r in caplog.records if r.name == "desktop_app.app" and r.levelno >= logging.WARNING
        ]
        assert line == (
            "quitting: gave up after 0.5 s waiting for background tasks; abandoned: " + ", ".join(abandoned)
        )
    finally:
        release.set()
        assert run(qtbot, app.aclose()) == []  # what was left behind can still be closed
        app.window.close()
        app.window.deleteLater()
