"""OllamaHosts without Qt: which hosts there are, adding and removing them, one service per host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import BadRequest
from desktop_app.domain.ollama import OllamaHost
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.local.ollama_hosts import LOCAL_LABEL, OllamaHosts
from desktop_app.services.settings import SettingsService
from tests.servers.ollama_server import OllamaServer

KEY = "host-key-for-tests"


@pytest.fixture
def remote() -> Iterator[OllamaServer]:
    with OllamaServer(installed=("tiny",), api_key=KEY) as server:
        yield server


@pytest_asyncio.fixture
async def hosts(
    accounts: AccountService, settings: SettingsService, secrets: SecretStore, tmp_path: Path
) -> AsyncIterator[OllamaHosts]:
    hosts = OllamaHosts(
        local=OllamaHost(url="http://127.0.0.1:11434"),
        accounts=accounts,
        settings=settings,
        secrets=secrets,
        state_file=tmp_path / "pulls.json",
    )
    yield hosts
    await hosts.aclose()


@pytest.mark.asyncio
async def test_the_local_host_comes_first_and_once(hosts: OllamaHosts, accounts: AccountService) -> None:
    assert [h.url for h in hosts.hosts()] == ["http://127.0.0.1:11434"]
    assert hosts.account_for("127.0.0.1") is None
    await accounts.save_account(Account(provider_id="ollama", label="Box", base_url="http://10.0.0.5:11434"))
    local = await hosts.ensure_account(hosts.local)
    assert local.label == LOCAL_LABEL and await hosts.ensure_account(hosts.local) == local  # made once
    listed = hosts.hosts()
    assert [(h.label, h.url) for h in listed] == [
        (LOCAL_LABEL, "http://127.0.0.1:11434"),
        ("Box", "http://10.0.0.5:11434"),
    ]
    assert listed[0].key_ref == local.id  # the local host is its account now
    # Addresses as typed find the same host.
    assert hosts.account_for("localhost:11434") == local  # another loopback name, the same server
    assert hosts.account_for("127.0.0.1:11435") is None  # another port is another host
    assert hosts.account_for("10.0.0.5") is not None


@pytest.mark.asyncio
async def test_add_keeps_the_key_in_the_keyring_and_the_service_sends_it(
    hosts: OllamaHosts, accounts: AccountService, secrets: SecretStore, remote: OllamaServer, tmp_path: Path
) -> None:
    host = await hosts.add(url=f"localhost:{remote.port}", label="Workstation", key=KEY)
    account = hosts.account_for(host.url)
    assert account is not None and account.label == "Workstation" and host.key_ref == account.id
    assert await secrets.get(account.id) == KEY
    assert KEY not in (tmp_path / "settings.json").read_text()
    service = await hosts.service(host)
    assert (await service.host_status()).reachable
    assert [m.name for m in await service.installed()] == ["tiny:latest"]
    assert await hosts.service(host) is service  # one service per host

    # A new key makes a new service; the old one is closed.
    await accounts.save_account(account, "another-key")
    renewed = await hosts.service(host)
    assert renewed is not service and not (await renewed.host_status()).reachable

    with pytest.raises(BadRequest, match="already in the list"):
        await hosts.add(url=f"http://localhost:{remote.port}")
    with pytest.raises(BadRequest, match="the address must start with http:// or https://"):
        await hosts.add(url="ftp://box:11434")
    # Refused where it is typed, in one sentence, not saved to fail every refresh later.
    with pytest.raises(BadRequest, match=r"“\[::1” cannot be used: an IPv6 address in the address needs both"):
        await hosts.add(url="[::1")
    with pytest.raises(BadRequest, match="the port of the address must be a number from 1 to 65535"):
        await hosts.add(url="10.0.0.5:99999")


@pytest.mark.asyncio
async def test_remove_forgets_a_host_and_its_key_but_not_the_local_one(
    hosts: OllamaHosts, secrets: SecretStore
) -> None:
    host = await hosts.add(url="10.0.0.9:11434", label="Old", key=KEY)
    account_id = host.key_ref
    assert account_id is not None
    await hosts.service(host)
    await hosts.remove(host)
    assert hosts.account_for(host.url) is None and await secrets.get(account_id) is None
    assert [h.url for h in hosts.hosts()] == ["http://127.0.0.1:11434"]
    with pytest.raises(BadRequest, match="cannot be removed"):
        await hosts.remove(hosts.local)


@pytest.mark.asyncio
async def test_the_local_account_is_made_once_unless_asked_again(
    hosts: OllamaHosts, accounts: AccountService, settings: SettingsService
) -> None:
    made = await hosts.ensure_account(hosts.local)
    assert made is not None and settings.current.local_ollama_added
    await accounts.remove_account(made.id)  # the user removed it
    assert await hosts.ensure_account(hosts.local) is None  # not made again behind their back
    again = await hosts.ensure_account(hosts.local, asked=True)  # "Chat with it"
    assert again is not None and again.id != made.id and again.label == LOCAL_LABEL
