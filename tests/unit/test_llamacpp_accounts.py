"""LlamaCppAccounts without Qt: one account per server, one that follows the server started here."""

from __future__ import annotations

import asyncio

import pytest

from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.local.llamacpp_accounts import MANAGED_LABEL, LlamaCppAccounts
from desktop_app.services.settings import SettingsService


@pytest.mark.asyncio
async def test_one_account_per_server_however_often_it_is_seen(
    accounts: AccountService, settings: SettingsService
) -> None:
    servers = LlamaCppAccounts(accounts, settings)
    made = await asyncio.gather(*(servers.ensure("http://127.0.0.1:8080") for _ in range(3)))
    assert len({a.id for a in made}) == 1
    assert made[0].label == "llama.cpp at 127.0.0.1:8080" and made[0].base_url == "http://127.0.0.1:8080/v1"
    assert (await servers.ensure("http://127.0.0.1:8080/v1/")).id == made[0].id  # the same server
    assert servers.server_urls() == ["http://127.0.0.1:8080/v1"]


@pytest.mark.asyncio
async def test_the_server_started_here_keeps_one_account_across_ports(
    accounts: AccountService, settings: SettingsService
) -> None:
    servers = LlamaCppAccounts(accounts, settings)
    first = await servers.ensure("http://127.0.0.1:41000", started_here=True)
    second = await servers.ensure("http://127.0.0.1:42000", started_here=True)
    assert first.id == second.id and second.label == MANAGED_LABEL
    assert second.base_url == "http://127.0.0.1:42000/v1"
    assert servers.server_urls() == []  # not listed again: its port goes with it
    assert await servers.forget("http://127.0.0.1:42000") == []  # Stop, not Remove, ends it


@pytest.mark.asyncio
async def test_forget_removes_the_servers_account(accounts: AccountService, settings: SettingsService) -> None:
    servers = LlamaCppAccounts(accounts, settings)
    kept = await servers.ensure("http://10.0.0.5:8080")
    gone = await servers.ensure("http://127.0.0.1:8081")
    assert [a.id for a in await servers.forget("http://127.0.0.1:8081")] == [gone.id]
    assert [a.id for a in accounts.accounts] == [kept.id]


@pytest.mark.asyncio
async def test_the_started_here_account_keeps_its_link_when_renamed(
    accounts: AccountService, settings: SettingsService, tmp_path
) -> None:
    servers = LlamaCppAccounts(accounts, settings)
    first = await servers.ensure("http://127.0.0.1:41000", started_here=True)
    await accounts.save_account(first.model_copy(update={"label": "My GPU box"}))  # renamed in Accounts
    second = await servers.ensure("http://127.0.0.1:42000", started_here=True)
    assert second.id == first.id and second.label == "My GPU box"
    assert second.base_url == "http://127.0.0.1:42000/v1"
    assert [a.id for a in accounts.accounts] == [first.id]
    assert servers.server_urls() == []  # still not listed again
    assert await servers.forget("http://127.0.0.1:42000") == []
    assert f'"llamacpp_started_here_account": "{first.id}"' in (tmp_path / "settings.json").read_text()


@pytest.mark.asyncio
async def test_settings_from_before_the_id_find_the_account_by_its_first_name_once(
    accounts: AccountService, settings: SettingsService
) -> None:
    from desktop_app.domain.accounts import Account

    old = Account(provider_id="llamacpp", label=MANAGED_LABEL, base_url="http://127.0.0.1:41000/v1")
    await accounts.save_account(old, "")
    servers = LlamaCppAccounts(accounts, settings)
    assert servers.server_urls() == []
    here = await servers.ensure("http://127.0.0.1:43000", started_here=True)
    assert here.id == old.id and settings.current.llamacpp_started_here_account == old.id
    await accounts.save_account(here.model_copy(update={"label": "Renamed"}))
    assert servers.started_here() is not None and servers.started_here().id == old.id


@pytest.mark.asyncio
async def test_a_connected_server_on_the_started_here_port_is_not_taken_for_it(
    accounts: AccountService, settings: SettingsService
) -> None:
    servers = LlamaCppAccounts(accounts, settings)
    connected = await servers.ensure("http://127.0.0.1:8080")
    assert (await servers.ensure("http://127.0.0.1:8080", started_here=True)).id == connected.id
    assert servers.started_here() is None and servers.server_urls() == ["http://127.0.0.1:8080/v1"]
