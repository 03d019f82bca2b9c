"""The adapter from service events to Qt signals: it unsubscribes when its widget is destroyed, so the
service never calls into a deleted widget and never keeps one alive."""

from __future__ import annotations

import gc
import logging
import socket
from pathlib import Path

import pytest
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from desktop_app.domain.accounts import Account
from desktop_app.domain.ollama import OllamaHost
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.events import Listeners
from desktop_app.services.local.ollama import OllamaService
from desktop_app.ui.accounts.pools import PoolsEditor
from desktop_app.ui.common.events import ServiceEvent, follow
from desktop_app.ui.ollama.pane import OllamaPane
from tests.ui.conftest import run


class Follower(QWidget):
    """A widget that follows a service event into a list kept outside it."""

    def __init__(self, event: Listeners[[str]], heard: list[str]) -> None:
        super().__init__()
        self.heard = heard
        self.followed = follow(self, event.subscribe, self._on_event)

    def _on_event(self, value: str) -> None:
        self.heard.append(value)


def test_events_arrive_as_the_signal_until_the_widget_is_destroyed(qtbot) -> None:
    event: Listeners[[str]] = Listeners("test")
    heard: list[str] = []
    widget = Follower(event, heard)
    with qtbot.waitSignal(widget.followed.fired) as fired:
        event.emit("before")
    assert fired.args == ["before"] and heard == ["before"]
    assert len(event) == 1

    gone: list[bool] = []
    widget.destroyed.connect(lambda: gone.append(True))
    widget.deleteLater()
    qtbot.waitUntil(lambda: bool(gone))
    assert len(event) == 0
    event.emit("after")  # nothing is called on the deleted widget
    assert heard == ["before"]


def test_an_event_without_a_value_reaches_a_slot_without_arguments(qtbot) -> None:
    event: Listeners[[]] = Listeners("test")
    owner = QObject()
    calls: list[str] = []
    followed = ServiceEvent(owner, event.subscribe)
    followed.fired.connect(lambda: calls.append("called"))
    event.emit()
    assert calls == ["called"]


def test_the_service_does_not_keep_a_dropped_owner_alive(qtbot) -> None:
    event: Listeners[[str]] = Listeners("test")
    owner = Follower(event, [])
    assert len(event) == 1
    del owner
    gc.collect()
    assert len(event) == 0


def test_close_unsubscribes_at_once_and_twice_is_harmless(qtbot) -> None:
    event: Listeners[[str]] = Listeners("test")
    heard: list[str] = []
    widget = Follower(event, heard)
    qtbot.addWidget(widget)
    gone: list[bool] = []
    widget.followed.destroyed.connect(lambda: gone.append(True))
    widget.followed.close()
    assert not widget.followed.subscribed and len(event) == 0
    event.emit("after close")
    widget.followed.close()
    qtbot.waitUntil(lambda: bool(gone))  # and it goes
    assert heard == []


def test_a_deleted_pools_editor_hears_no_more_of_the_accounts(
    qtbot, qloop, account_service: AccountService, caplog: pytest.LogCaptureFixture
) -> None:
    listeners = account_service._accounts_changed  # the count is what this test is about
    before = len(listeners)
    editor = PoolsEditor(accounts=account_service)
    assert len(listeners) == before + 2  # its list model and the editor itself
    run(qtbot, editor.aclose())
    gone: list[bool] = []
    editor.destroyed.connect(lambda: gone.append(True))
    editor.deleteLater()
    qtbot.waitUntil(lambda: bool(gone))
    assert len(listeners) == before

    with caplog.at_level(logging.ERROR):
        account = Account(provider_id="openai_compatible", label="Lab", base_url="http://127.0.0.1:9/v1")
        run(qtbot, account_service.save_account(account, "sk-lab"))
    assert account_service.find(account.id) is not None
    assert "failed" not in caplog.text


def test_closing_a_pane_cancels_its_work_before_it_is_deleted(
    qtbot, qloop, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No pane checks whether it still exists: its tasks are its own, and closing it cancels them."""
    with socket.socket() as silent:  # takes the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        service = OllamaService(
            OllamaHost(url=f"http://127.0.0.1:{silent.getsockname()[1]}"),
            state_file=tmp_path / "pulls.json",
            models_dir=tmp_path,
            status_timeout=60,
        )
        pane = OllamaPane(ollama=service)
        pulls = service._listeners  # the count is what this test is about
        assert len(pulls) == 1
        with caplog.at_level(logging.ERROR):
            pane.refresh_button.click()
            qtbot.waitUntil(lambda: not pane.refresh_button.isEnabled())  # asking a host that never answers
            pane.close()
            qtbot.waitUntil(lambda: pane.refresh_button.isEnabled())  # cancelled while the pane is there
            gone: list[bool] = []
            pane.destroyed.connect(lambda: gone.append(True))
            pane.deleteLater()
            qtbot.waitUntil(lambda: bool(gone))
        assert len(pulls) == 0
        assert "failed" not in caplog.text
        run(qtbot, service.aclose())
