"""UI fixtures: the whole composition root (real services) on a qasync loop, the fault server, and
an AccountService on real stores for the account panes and dialogs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.paths import AppPaths
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore
from tests.servers.openai_fault import FaultServer

WAIT_MS = 10_000  # for a signal or condition the test waits on

W = TypeVar("W")


@pytest.fixture
def fault_server():
    with FaultServer() as server:
        yield server


def run(qtbot, coro, timeout: int = 20_000):
    """Run `coro` on the qasync loop, letting Qt process events until it is done; return its result."""
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


@pytest.fixture
def modeldesk(qtbot, qloop):
    """The real app (every service, the main window), started as after a first paint."""
    app = ModelDeskApp(paths=AppPaths.from_environment(), offer_env_import=False)
    app.window.show()
    qtbot.waitExposed(app.window)
    run(qtbot, app.start())
    yield app
    run(qtbot, app.aclose())
    app.window.close()
    app.window.deleteLater()


@pytest.fixture
def fault_account(qtbot, modeldesk, fault_server) -> Account:
    account = Account(provider_id="openai_compatible", label="Fault lab", base_url=fault_server.base_url)
    run(qtbot, modeldesk.accounts.save_account(account, "sk-test"))
    run(qtbot, modeldesk.accounts.refresh_models(account.id))
    return account


# --- accounts on real stores (settings file, in-memory keyring, a catalog) -------------------------


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


def saved_settings(settings_file: Path) -> Settings:
    """What is on disk, read the way the next start of the app reads it."""
    settings, notice = SettingsStore(settings_file).load()
    assert notice is None
    return settings


@pytest.fixture
def make_account_service(qloop, qtbot, tmp_path: Path, settings_file: Path) -> Iterator[Callable[..., AccountService]]:
    """Makes AccountServices that share the settings file; closes their stores and clients after the test."""
    opened: list[tuple[SecretStore, SettingsStore, httpx.AsyncClient]] = []

    def make(
        secrets: SecretStore | None = None, states: AccountStates | None = None, settings: Settings | None = None
    ) -> AccountService:
        secrets = secrets if secrets is not None else SecretStore()
        run(qtbot, secrets.start())
        store = SettingsStore(settings_file)
        http = httpx.AsyncClient()
        opened.append((secrets, store, http))
        catalog = ModelCatalog(http=http, cache_file=tmp_path / "cache" / "models.json")
        return AccountService(
            settings=SettingsService(store=store, settings=settings or Settings()),
            secrets=secrets,
            catalog=catalog,
            states=states,
        )

    yield make
    for secrets, store, http in opened:
        run(qtbot, http.aclose())
        run(qtbot, store.close())
        run(qtbot, secrets.close())


@pytest.fixture
def account_service(make_account_service) -> AccountService:
    return make_account_service()


def close_after(qtbot) -> Callable[[Any], None]:
    """For qtbot.addWidget's `before_close_func`: the widget's `aclose()` is awaited before pytest-qt
    closes and deletes it, as the app closes its panes before the window goes."""
    return lambda widget: run(qtbot, widget.aclose())


@pytest.fixture
def add_widget(qloop, qtbot) -> Callable[[W], W]:
    """`add_widget(widget)`: qtbot's addWidget, with the widget's `aclose()` awaited after the test,
    before the widget is deleted."""

    def add(widget: W) -> W:
        qtbot.addWidget(widget, before_close_func=close_after(qtbot))
        return widget

    return add


@pytest.fixture
def parent(qtbot) -> QWidget:
    """A plain widget for the dialogs a test opens."""
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def ask_to_remove(qtbot, widget: Any) -> QAbstractButton:
    """Press the widget's Remove button, wait for the box that asks first, and return the box's
    button that confirms (the destructive one)."""
    widget.remove_button.click()
    qtbot.waitUntil(lambda: widget.confirm_box is not None and widget.confirm_box.isVisible(), timeout=WAIT_MS)
    box = widget.confirm_box
    return next(b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole)
