"""Several Ollama hosts in one pane, and their installed models in the chat's picker on their own.

The whole app runs against two strict loopback Ollama servers: the "local" one (OLLAMA_HOST) and
a "remote" one that wants a bearer key, as a host behind an authenticating proxy does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from desktop_app.app import ModelDeskApp
from desktop_app.domain.ollama import PullState
from tests.servers.ollama_server import OllamaServer
from tests.ui.conftest import run

TIMEOUT = 10_000
REMOTE_KEY = "remote-proxy-key-for-tests"


@pytest.fixture
def local() -> Iterator[OllamaServer]:
    with OllamaServer(installed=("gemma3:270m", "qwen2.5:0.5b")) as server:
        yield server


@pytest.fixture
def remote() -> Iterator[OllamaServer]:
    with OllamaServer(installed=("llama3.2:1b",), api_key=REMOTE_KEY, version="0.13.0") as server:
        yield server


@pytest.fixture
def local_ollama_env(monkeypatch, local: OllamaServer) -> None:
    monkeypatch.setenv("OLLAMA_HOST", local.base_url)


@pytest.fixture
def app(local_ollama_env, modeldesk: ModelDeskApp) -> ModelDeskApp:
    """The real app, built after OLLAMA_HOST points at the local loopback Ollama."""
    return modeldesk


def picker_has(app: ModelDeskApp, account_id: str, name: str) -> bool:
    return app.chat_pane.picker_model.row_of(account_id, name) >= 0


def ollama_accounts(app: ModelDeskApp) -> list:
    return [a for a in app.accounts.accounts if a.provider_id == "ollama"]


def open_ollama(qtbot, app: ModelDeskApp) -> None:
    with qtbot.waitSignal(app.ollama_pane.refreshed, timeout=TIMEOUT):
        app.window.show_pane("Ollama")


def add_remote(qtbot, app: ModelDeskApp, remote: OllamaServer, key: str = REMOTE_KEY) -> None:
    bar = app.ollama_pane.host_bar
    bar.add_button.click()
    dialog = bar.add_dialog
    assert dialog is not None and dialog.isVisible()  # opened with open(): no nested event loop
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()  # no address yet
    qtbot.keyClicks(dialog.url_edit, f"localhost:{remote.port}")
    qtbot.keyClicks(dialog.label_edit, "Workstation")
    qtbot.keyClicks(dialog.key_edit, key)
    with qtbot.waitSignal(app.ollama_pane.refreshed, timeout=TIMEOUT):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_the_local_ollamas_models_reach_the_picker_when_the_pane_opens(
    qtbot, app: ModelDeskApp, local: OllamaServer
) -> None:
    assert ollama_accounts(app) == []  # nothing is asked of Ollama before the pane is opened
    assert local.requests == []
    open_ollama(qtbot, app)
    qtbot.waitUntil(lambda: len(ollama_accounts(app)) == 1, timeout=TIMEOUT)
    account = ollama_accounts(app)[0]
    assert account.label == "Local Ollama"
    qtbot.waitUntil(
        lambda: picker_has(app, account.id, "gemma3:270m") and picker_has(app, account.id, "qwen2.5:0.5b"),
        timeout=TIMEOUT,
    )
    qtbot.waitUntil(lambda: "now in the chat's picker" in app.window.statusBar().currentMessage(), timeout=TIMEOUT)

    pane = app.ollama_pane
    # A pull that finishes puts the new model in the picker too.
    with qtbot.waitSignal(pane.pull_finished, timeout=TIMEOUT) as finished:
        run(qtbot, pane.pull("tiny"))
    assert finished.args == ["tiny:latest", PullState.DONE.value]
    qtbot.waitUntil(lambda: picker_has(app, account.id, "tiny:latest"), timeout=TIMEOUT)
    # And a deleted one leaves it.
    assert run(qtbot, pane.delete("qwen2.5:0.5b", confirmed=True))
    qtbot.waitUntil(lambda: not picker_has(app, account.id, "qwen2.5:0.5b"), timeout=TIMEOUT)
    assert len(ollama_accounts(app)) == 1  # the same account every time

    # "Chat with it" opens the chat with that model picked.
    assert pane.select_installed("gemma3:270m")
    pane.chat_button.click()
    qtbot.waitUntil(lambda: app.window.stack.currentWidget() is app.chat_pane, timeout=TIMEOUT)
    assert app.chat_pane.selected_model() == (account.id, "gemma3:270m")

    # Once the user removed that account, looking at the pane again does not bring it back...
    run(qtbot, app.accounts.remove_account(account.id))
    app.window.show_pane("Ollama")
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        pane.refresh_button.click()
    qtbot.waitUntil(lambda: app.ollama_pane._tasks.running == 0, timeout=TIMEOUT)  # the sync that follows a refresh ran
    assert ollama_accounts(app) == []
    # ...but "Chat with it" is asking for it.
    assert pane.select_installed("gemma3:270m")
    pane.chat_button.click()
    qtbot.waitUntil(lambda: len(ollama_accounts(app)) == 1, timeout=TIMEOUT)
    again = ollama_accounts(app)[0]
    qtbot.waitUntil(lambda: app.chat_pane.selected_model() == (again.id, "gemma3:270m"), timeout=TIMEOUT)


def test_a_remote_host_with_a_key_is_added_checked_and_removed(
    qtbot, app: ModelDeskApp, local: OllamaServer, remote: OllamaServer, memory_keyring
) -> None:
    open_ollama(qtbot, app)
    pane, bar = app.ollama_pane, app.ollama_pane.host_bar
    assert bar.combo.count() == 1 and not bar.remove_button.isEnabled()  # the local host stays
    add_remote(qtbot, app, remote)

    # The new host is shown: its version, its models, its key in the keyring and nowhere else.
    assert bar.combo.count() == 2 and bar.current.label == "Workstation"
    assert pane.host_bar.status_label.text() == f"Ollama 0.13.0 at localhost:{remote.port}"
    assert pane.installed_model.names() == ["llama3.2:1b"]
    account = next(a for a in ollama_accounts(app) if a.label == "Workstation")
    assert account.base_url == f"http://localhost:{remote.port}"
    assert REMOTE_KEY in memory_keyring.entries.values()
    assert REMOTE_KEY not in app.paths.settings_file.read_text()
    assert all(r.headers.get("authorization") == f"Bearer {REMOTE_KEY}" for r in remote.requests)
    qtbot.waitUntil(lambda: picker_has(app, account.id, "llama3.2:1b"), timeout=TIMEOUT)
    # Every host's state is in the picker of hosts: the local one answered too.
    qtbot.waitUntil(lambda: (bar.status_of(local.base_url) or pane.host_status).reachable, timeout=TIMEOUT)
    assert "0.12.6" in bar.combo.itemData(0, Qt.ItemDataRole.ToolTipRole)

    # Back to the local host: its own models.
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        assert bar.choose(local.base_url)
    assert sorted(pane.installed_model.names()) == ["gemma3:270m", "qwen2.5:0.5b"]
    assert not bar.remove_button.isEnabled()

    # Remove the remote host, after a confirmation: its account and key go.
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        bar.choose(f"http://localhost:{remote.port}")
    assert bar.remove_button.isEnabled()
    bar.remove_button.click()
    box = bar.remove_dialog
    assert box is not None and box.isVisible()
    remove = next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole)
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):  # the pane goes back to the local host
        remove.click()
    assert bar.combo.count() == 1 and "Workstation" not in {a.label for a in app.accounts.accounts}
    assert REMOTE_KEY not in memory_keyring.entries.values()
    assert sorted(pane.installed_model.names()) == ["gemma3:270m", "qwen2.5:0.5b"]


def test_a_wrong_key_and_a_host_that_is_down_are_said_in_one_sentence(
    qtbot, app: ModelDeskApp, remote: OllamaServer
) -> None:
    open_ollama(qtbot, app)
    pane = app.ollama_pane
    add_remote(qtbot, app, remote, key="not-the-key")
    assert pane.host_status is not None and not pane.host_status.reachable
    sentence = pane.host_bar.status_label.text()
    assert "key" in sentence.lower() and "not-the-key" not in sentence
    assert pane.showing_empty_state
    # Adding the same address twice is refused, in one sentence.
    run(qtbot, pane.host_bar.add_host(f"localhost:{remote.port}", "Again"))
    assert pane.status_label.text().startswith(f"localhost:{remote.port} is already in the list.")
    # A host that stops answering says so.
    port = remote.port
    remote.stop()
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        pane.refresh_button.click()
    assert f"localhost:{port}" in pane.host_bar.status_label.text() and not pane.host_status.reachable


def test_a_pull_keeps_running_while_another_host_is_shown(
    qtbot, app: ModelDeskApp, local: OllamaServer, remote: OllamaServer
) -> None:
    remote.tick_s = 0.02
    remote.bytes_per_tick = 200_000  # "tiny" (3 MB) takes ~15 ticks
    open_ollama(qtbot, app)
    add_remote(qtbot, app, remote)
    pane, bar = app.ollama_pane, app.ollama_pane.host_bar
    remote_service = pane.service
    job = run(qtbot, pane.pull("tiny"))
    assert job is not None
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        bar.choose(local.base_url)
    assert pane.jobs_model.names() == []  # the local host's pulls: none
    qtbot.waitUntil(lambda: job.state is PullState.DONE, timeout=TIMEOUT)
    assert "tiny:latest" in remote.installed_names() and "tiny:latest" not in local.installed_names()
    with qtbot.waitSignal(pane.refreshed, timeout=TIMEOUT):
        bar.choose(f"http://localhost:{remote.port}")
    assert pane.service is remote_service
    assert pane.jobs_model.names() == ["tiny:latest"]
    assert "tiny:latest" in pane.installed_model.names()


def test_a_local_ollama_behind_a_key_is_asked_with_it(qtbot, qloop, monkeypatch, remote: OllamaServer) -> None:
    """OLLAMA_HOST names a server that wants a key, and its account has one: the first look uses it."""
    from desktop_app.domain.accounts import Account
    from desktop_app.services.paths import AppPaths

    monkeypatch.setenv("OLLAMA_HOST", remote.base_url)
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    try:
        run(qtbot, app.start())
        run(
            qtbot,
            app.accounts.save_account(
                Account(provider_id="ollama", label="This box", base_url=remote.base_url), REMOTE_KEY
            ),
        )
        open_ollama(qtbot, app)
        pane = app.ollama_pane
        assert pane.host_bar.current.label == "This box"
        assert pane.host_status is not None and pane.host_status.reachable, pane.host_bar.status_label.text()
        assert pane.installed_model.names() == ["llama3.2:1b"]
    finally:
        run(qtbot, app.aclose())
        app.window.close()
        app.window.deleteLater()


def test_an_embedding_model_stays_out_of_the_picker(qtbot, app: ModelDeskApp, local: OllamaServer) -> None:
    local.install("nomic-embed-text")
    open_ollama(qtbot, app)
    qtbot.waitUntil(lambda: len(ollama_accounts(app)) == 1, timeout=TIMEOUT)
    account = ollama_accounts(app)[0]
    qtbot.waitUntil(lambda: picker_has(app, account.id, "gemma3:270m"), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: app.ollama_pane._tasks.running == 0, timeout=TIMEOUT)
    assert not picker_has(app, account.id, "nomic-embed-text:latest")
    assert "nomic-embed-text:latest" in app.ollama_pane.installed_model.names()  # listed, marked, not offered
