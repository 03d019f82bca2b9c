"""The background health check against the loopback OpenAI and Anthropic servers and a closed port:
a model listing per account (never a chat request), its verdict in AccountStates, and its loop driven
with an injected interval, waited on through the states' own events."""

from __future__ import annotations

import asyncio
import socket

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.health import HealthChecks
from desktop_app.services.accounts.state import AccountStates
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.openai_fault import FaultServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def states() -> AccountStates:
    return AccountStates()


@pytest.fixture
def service(catalog, settings, secrets, states) -> AccountService:
    return AccountService(settings=settings, secrets=secrets, catalog=catalog, states=states)


@pytest.mark.asyncio
async def test_a_round_lists_each_accounts_models_and_marks_the_unreachable_one_down(service, states, settings) -> None:
    with FaultServer() as openai, AnthropicServer() as anthropic:
        gpt = Account(provider_id="openai", label="GPT", base_url=openai.base_url)
        claude = Account(provider_id="anthropic", label="Claude", base_url=anthropic.base_url)
        local = Account(provider_id="llamacpp", label="Laptop", base_url=f"http://127.0.0.1:{closed_port()}")
        keyless = Account(provider_id="openai", label="No key yet", base_url=openai.base_url)
        await service.save_account(gpt, "sk-test")
        await service.save_account(claude, "sk-ant-test-a")
        await service.save_account(local)
        await service.save_account(keyless)
        states.set_down(claude.id, "it could not be reached")  # an earlier round's verdict
        checks = HealthChecks(accounts=service, states=states, settings=lambda: settings.current)

        await checks.check_all()

        asked = [(r.method, r.path) for r in openai.requests]
        claude_asked = [(r.method, r.path) for r in anthropic.requests]
    assert asked == [("GET", "/v1/models")]  # the keyless account is not asked; nothing is paid for
    assert claude_asked == [("GET", "/v1/models")]
    assert states.health(gpt.id).down == "" and states.health(claude.id).down == ""  # back up
    assert states.health(local.id).down.startswith("Could not connect")
    assert states.status_text(local.id).startswith("Down at the last health check: Could not connect")
    assert checks.rounds == 1


@pytest.mark.asyncio
async def test_the_loop_checks_every_interval_and_not_at_all_when_off(service, states, settings) -> None:
    local = Account(provider_id="llamacpp", label="Laptop", base_url=f"http://127.0.0.1:{closed_port()}")
    await service.save_account(local)
    interval = [0.0]
    checks = HealthChecks(
        accounts=service, states=states, settings=lambda: settings.current, interval_s=lambda: interval[0]
    )
    marked = asyncio.Event()
    states.on_changed(lambda account_id: marked.set() if states.health(account_id).down else None)

    checks.start()
    for _ in range(20):  # off: the loop only waits
        await asyncio.sleep(0)
    assert checks.rounds == 0 and not marked.is_set()

    interval[0] = 0.01
    checks.settings_changed()
    await asyncio.wait_for(marked.wait(), 10)
    await checks.aclose()
    assert states.health(local.id).down and checks.rounds >= 1


@pytest.mark.asyncio
async def test_the_interval_is_a_setting_off_by_default(service, settings) -> None:
    assert service.health_check_minutes == 0
    await service.set_health_check_minutes(5)
    assert settings.current.health_check_minutes == 5
