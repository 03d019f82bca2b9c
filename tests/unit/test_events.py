"""Service events: every subscription returns the function that unsubscribes, and it really stops
delivery, for the plain `Listeners` and for the services' own events."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.ollama import OllamaHost
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.events import Listeners
from desktop_app.services.local.ollama_hosts import OllamaHosts
from desktop_app.services.settings import SettingsService


def test_an_unsubscribed_listener_hears_nothing_more() -> None:
    event: Listeners[[str]] = Listeners("test")
    heard: list[str] = []
    unsubscribe = event.subscribe(heard.append)
    event.emit("one")
    unsubscribe()
    event.emit("two")
    unsubscribe()  # twice is harmless
    assert heard == ["one"]
    assert len(event) == 0


def test_one_listener_subscribed_twice_is_unsubscribed_once_at_a_time() -> None:
    event: Listeners[[str]] = Listeners("test")
    heard: list[str] = []
    first = event.subscribe(heard.append)
    event.subscribe(heard.append)
    first()
    event.emit("x")
    assert heard == ["x"]
    assert len(event) == 1


def test_a_listener_unsubscribed_by_an_earlier_one_misses_the_event_under_way() -> None:
    event: Listeners[[]] = Listeners("test")
    heard: list[str] = []
    unsubscribe_second = None

    def first() -> None:
        heard.append("first")
        assert unsubscribe_second is not None
        unsubscribe_second()  # e.g. the first listener's widget deletes the second's

    event.subscribe(first)
    unsubscribe_second = event.subscribe(lambda: heard.append("second"))
    event.emit()
    assert heard == ["first"]


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog: pytest.LogCaptureFixture) -> None:
    event: Listeners[[int]] = Listeners("test event")
    heard: list[int] = []

    def broken(_value: int) -> None:
        raise ValueError("a bug in a listener")

    event.subscribe(broken)
    event.subscribe(heard.append)
    with caplog.at_level(logging.ERROR):
        event.emit(7)
    assert heard == [7]
    assert "a listener of test event failed" in caplog.text


def test_account_states_stop_announcing_after_unsubscribe() -> None:
    states = AccountStates()
    heard: list[str] = []
    unsubscribe = states.on_changed(heard.append)
    states.cool_down("a", 5)
    unsubscribe()
    states.mark_broken("a", "The key was refused.")
    assert heard == ["a"]


@pytest.mark.asyncio
async def test_account_service_events_stop_after_unsubscribe(
    accounts: AccountService, settings: SettingsService, secrets: SecretStore, tmp_path: Path
) -> None:
    changed: list[str] = []
    models: list[str] = []
    hosts: list[str] = []
    ollama_hosts = OllamaHosts(
        local=OllamaHost(url="http://127.0.0.1:11434"),
        accounts=accounts,
        settings=settings,
        secrets=secrets,
        state_file=tmp_path / "pulls.json",
    )
    stop_changed = accounts.on_accounts_changed(lambda: changed.append("accounts"))
    stop_models = accounts.on_models_changed(models.append)
    stop_hosts = ollama_hosts.on_hosts_changed(lambda: hosts.append("hosts"))
    first = Account(provider_id="openai_compatible", label="First", base_url="http://127.0.0.1:9/v1")
    await accounts.save_account(first, "sk-first")
    await accounts.remove_account(first.id)
    assert changed == ["accounts", "accounts"] and hosts == ["hosts", "hosts"] and models == [first.id]

    for stop in (stop_changed, stop_models, stop_hosts):
        stop()
    second = Account(provider_id="openai_compatible", label="Second", base_url="http://127.0.0.1:9/v1")
    await accounts.save_account(second, "sk-second")
    await accounts.remove_account(second.id)
    assert changed == ["accounts", "accounts"] and hosts == ["hosts", "hosts"] and models == [first.id]
    await ollama_hosts.aclose()
