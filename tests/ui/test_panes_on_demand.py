"""Panes the user has not opened are built, and their modules imported, when first shown.

Every title is in the side bar from the start, and a pane built later is wired as one built at
start-up was: the real app, against a strict loopback Ollama server for the Ollama pane.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QWidget

from desktop_app.app import ModelDeskApp
from desktop_app.domain.usage import UsageRecord
from tests.servers.ollama_server import OllamaServer
from tests.ui.conftest import run

TITLES = ["Chat", "Accounts", "Usage", "Ollama", "llama.cpp", "GGUF files", "Discover"]
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10_000


def test_start_up_builds_only_the_panes_on_screen(modeldesk: ModelDeskApp):
    window = modeldesk.window
    assert [window.nav.item(row).text() for row in range(window.nav.count())] == TITLES
    assert window.stack.count() == len(TITLES)
    # No account yet: start-up showed Accounts, so it is built; Chat and GGUF files always are.
    assert window.stack.currentWidget() is window.built_pane("Accounts") is modeldesk.accounts_pane
    assert [title for title in TITLES if window.built_pane(title) is None] == [
        "Usage",
        "Ollama",
        "llama.cpp",
        "Discover",
    ]


def test_the_keyboard_builds_the_pane_it_moves_to_and_the_pane_is_wired(qtbot, modeldesk: ModelDeskApp):
    window = modeldesk.window
    window.nav.setFocus()
    qtbot.keyClick(window.nav, Qt.Key.Key_Down)  # Accounts -> Usage
    usage = window.built_pane("Usage")
    assert usage is not None and window.stack.currentWidget() is usage is modeldesk.usage_pane
    qtbot.waitUntil(lambda: usage.showing_empty_state and usage.empty_button.isVisible(), timeout=TIMEOUT)
    usage.empty_button.click()  # "Start a chat": connected when the pane was built
    assert window.stack.currentWidget() is modeldesk.chat_pane
    # The help menu's pane list goes through the same path.
    window.show_pane("llama.cpp")
    assert window.stack.currentWidget() is window.built_pane("llama.cpp") is modeldesk.llamacpp_pane


class PaintLog(QObject):
    """Notes `name` in `log` each time `widget` is painted."""

    def __init__(self, log: list[str], name: str, widget: QWidget) -> None:
        super().__init__(widget)
        self._log, self._name = log, name
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self._log.append(self._name)
        return False


def test_the_usage_pane_first_shown_paints_its_rows_not_its_empty_state(qtbot, modeldesk: ModelDeskApp):
    record = UsageRecord(
        at=time.time(),
        account_id="acc",
        model="gemma",
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=None,
        latency_s=1.0,
        ttft_s=0.1,
        status="ok",
        error_kind="",
    )
    run(qtbot, modeldesk.usage.record(record))
    painted: list[str] = []
    modeldesk.window.show_pane("Usage")  # built now; its rows are read on a worker thread
    pane = modeldesk.usage_pane
    PaintLog(painted, "empty state", pane.empty_hint)
    PaintLog(painted, "chart", pane.chart)
    qtbot.waitUntil(lambda: "chart" in painted, timeout=TIMEOUT)
    assert "empty state" not in painted
    assert not pane.showing_empty_state


@pytest.fixture
def with_ollama(monkeypatch) -> Iterator[OllamaServer]:
    with OllamaServer(installed=("gemma3:270m",)) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.base_url)
        yield server


def test_the_ollama_pane_built_when_shown_asks_its_host_and_chats_with_a_model(
    qtbot, with_ollama: OllamaServer, modeldesk: ModelDeskApp
):
    app = modeldesk  # built after OLLAMA_HOST points at the loopback Ollama
    assert app.window.built_pane("Ollama") is None
    app.window.show_pane("Ollama")
    pane = app.window.built_pane("Ollama")
    assert pane is not None and app.window.stack.currentWidget() is pane
    # Shown, so opened: it asks its host, and says in the status bar that the models are in the picker.
    qtbot.waitUntil(lambda: "now in the chat's picker" in app.window.statusBar().currentMessage(), timeout=TIMEOUT)
    assert pane.select_installed("gemma3:270m")
    pane.chat_button.click()  # "Chat with it"
    qtbot.waitUntil(lambda: app.window.stack.currentWidget() is app.chat_pane, timeout=TIMEOUT)
    assert app.chat_pane.selected_model()[1] == "gemma3:270m"


BUILD_AND_SHOW = textwrap.dedent(
    """
    import json, sys
    from keyring.backends.fail import Keyring
    from PySide6.QtWidgets import QApplication
    from desktop_app.app import ModelDeskApp
    from desktop_app.services.accounts.secrets import SecretStore
    from desktop_app.services.paths import AppPaths

    PANES = ("desktop_app.ui.accounts", "desktop_app.ui.usage", "desktop_app.ui.ollama", "desktop_app.ui.llamacpp.pane")
    qt = QApplication(sys.argv[:1])
    app = ModelDeskApp(paths=AppPaths.from_environment(), secrets=SecretStore(backend=Keyring()), offer_env_import=False)
    app.window.show()
    qt.processEvents()
    before = [name for name in PANES if name in sys.modules]
    app.window.show_pane("Ollama")
    after = [name for name in PANES if name in sys.modules]
    print(json.dumps({"before": before, "after": after}))
    """
)


def test_the_modules_of_panes_not_shown_are_not_imported():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", BUILD_AND_SHOW], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert modules == {"before": [], "after": ["desktop_app.ui.ollama"]}
