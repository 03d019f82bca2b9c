"""UI fixtures: the whole composition root (real services) on a qasync loop, plus the fault server."""

from __future__ import annotations

import asyncio

import pytest

from desktop_app.app import ModelDeskApp
from desktop_app.domain.accounts import Account
from desktop_app.services.paths import AppPaths
from tests.servers.openai_fault import FaultServer


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
