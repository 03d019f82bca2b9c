"""Settings > Local engine…: the llama.cpp pane's engine box in a window of its own, in the real
app against the loopback release twin; installing there makes the engine the app runs."""

from __future__ import annotations

import pytest

from desktop_app.ui.llamacpp.engine_box import NO_ENGINE, EngineBox
from tests.ui.conftest import WAIT_MS
from tests.unit.engine_archives import TAG

pytest_plugins = ("tests.unit.engine_twin",)
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def app(release_twin, modeldesk):
    return modeldesk


@pytest.fixture(autouse=True)
def no_llama_server_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")


def test_settings_local_engine_opens_the_engine_box_and_installs_from_it(qtbot, app, release_twin):
    bar = app.window.menuBar()
    assert [a.text() for a in bar.actions()] == ["&File", "&View", "&Settings", "&Help"]
    settings = app.settings_menu
    assert settings is not None and settings.menu.actions()[0] is settings.local_engine_action
    assert settings.local_engine_action.text() == "Local engine…"

    settings.local_engine_action.trigger()
    dialog = settings.engine_dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "Local engine"
    assert type(dialog.box) is EngineBox and app.window.built_pane("llama.cpp") is None  # no pane needed
    qtbot.waitUntil(lambda: dialog.box.engine_label.text() == NO_ENGINE, timeout=WAIT_MS)

    dialog.box.check_button.click()
    qtbot.waitUntil(dialog.box.install_button.isVisible, timeout=WAIT_MS)
    dialog.box.install_button.click()
    qtbot.waitUntil(lambda: dialog.box.in_use is not None, timeout=60_000)
    assert app.engines.current() is not None and app.engines.current().tag == TAG
    assert dialog.box.status.text() == f"llama.cpp {TAG} is installed and ran."

    dialog.close()
    assert settings.show_local_engine() is dialog and dialog.isVisible()  # one window, shown again
