"""LocalServers without Qt: local servers become accounts with their models in the picker, and the
llama-server started here is owned by the service (real llama-server, strict loopback Ollama)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from desktop_app.domain.llamacpp import ManagedServerSpec, ManagedStatus, builtin_template_args
from desktop_app.domain.ollama import OllamaHost
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_managed import free_port
from desktop_app.services.local.servers import LocalServers
from desktop_app.services.settings import SettingsService
from tests.servers.llama import LlamaServer, real_artifacts
from tests.servers.ollama_server import OllamaServer


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer(installed=("gemma3:270m", "qwen2.5:0.5b")) as server:
        yield server


@pytest.fixture(scope="module")
def single() -> Iterator[LlamaServer]:
    with LlamaServer(alias="gemma-single") as server:
        yield server


@pytest_asyncio.fixture
async def local(
    accounts: AccountService, settings: SettingsService, secrets: SecretStore, ollama: OllamaServer, tmp_path: Path
) -> AsyncIterator[LocalServers]:
    http = httpx.AsyncClient()
    servers = LocalServers(
        accounts=accounts,
        settings=settings,
        secrets=secrets,
        llamacpp=LlamaCppService(http),
        local_ollama=OllamaHost(url=ollama.base_url),
        pulls_file=tmp_path / "pulls.json",
    )
    yield servers
    await servers.aclose()
    await http.aclose()


@pytest.mark.asyncio
async def test_the_local_ollamas_models_reach_the_picker_once_and_not_again_after_removal(
    local: LocalServers, accounts: AccountService
) -> None:
    host = local.ollama.local
    first = await local.ollama_listed(host, ["gemma3:270m", "qwen2.5:0.5b"])
    assert first is not None and first.new and first.error is None
    assert sorted(first.models) == ["gemma3:270m", "qwen2.5:0.5b"]
    assert sorted(accounts.cached_models(first.account.id)) == ["gemma3:270m", "qwen2.5:0.5b"]
    again = await local.ollama_listed(host, ["qwen2.5:0.5b", "gemma3:270m"])
    assert again is not None and again.account.id == first.account.id and not again.new

    await accounts.remove_account(first.account.id)
    assert await local.ollama_listed(host, ["gemma3:270m"]) is None  # not made again unasked
    asked = await local.ollama_for_chat(host, "gemma3:270m")  # "Chat with it" asks for it
    assert asked.account.id != first.account.id and "gemma3:270m" in asked.models


@pytest.mark.asyncio
async def test_renaming_the_local_ollamas_account_keeps_it_the_local_host(
    local: LocalServers, accounts: AccountService
) -> None:
    made = await local.ollama_listed(local.ollama.local, ["gemma3:270m", "qwen2.5:0.5b"])
    assert made is not None
    await accounts.save_account(made.account.model_copy(update={"label": "This computer"}))
    hosts = local.ollama.hosts()
    assert [(h.label, h.key_ref) for h in hosts] == [("This computer", made.account.id)]
    listed = await local.ollama_listed(local.ollama.local, ["gemma3:270m"])
    assert listed is not None and listed.account.id == made.account.id and len(accounts.accounts) == 1


@pytest.mark.asyncio
async def test_a_llama_server_listed_or_used_in_chat_is_one_account_and_forget_removes_it(
    local: LocalServers, accounts: AccountService, single: LlamaServer
) -> None:
    listed = await local.llamacpp_listed(single.base_url, ["gemma-single"], started_here=False)
    assert listed.error is None and listed.models == ("gemma-single",)
    used = await local.llamacpp_for_chat(single.base_url)
    assert used.account.id == listed.account.id and used.models == ("gemma-single",)
    assert local.llamacpp_urls() == [f"{single.base_url}/v1"]

    dead = f"http://127.0.0.1:{free_port()}"
    gone = await local.llamacpp_for_chat(dead)  # the account is made; the listing says why not
    assert gone.error is not None and gone.error.message.startswith("Could not connect")
    assert [a.id for a in await local.forget_llamacpp(dead)] == [gone.account.id]
    assert [a.id for a in accounts.accounts] == [listed.account.id]


@pytest.mark.asyncio
async def test_the_server_started_here_is_owned_by_the_service(local: LocalServers, tmp_path: Path) -> None:
    binary, gguf = real_artifacts()
    home = tmp_path / "llama-home"
    home.mkdir()
    spec = ManagedServerSpec(
        model=gguf,
        binary=str(binary),
        ctx=2048,
        threads=2,
        alias="gemma-here",
        extra_args=builtin_template_args("gemma"),
        env={"HOME": str(home), "LLAMA_CACHE": str(home / "cache")},
    )
    first = await local.here.replace(spec)
    assert local.here.server is first
    await first.start()
    pid = first.pid
    assert pid is not None and psutil.pid_exists(pid)
    listed = await local.llamacpp_listed(first.url, ["gemma-here"], started_here=True)
    assert listed.account.id == local.llamacpp.started_here().id and listed.models == ("gemma-here",)

    second = await local.here.replace(spec)  # one at a time: the first is stopped
    assert first.state.status is ManagedStatus.STOPPED and not psutil.pid_exists(pid)
    await second.start()
    assert (await local.llamacpp_listed(second.url, ["gemma-here"], started_here=True)).account.id == listed.account.id
    second_pid = second.pid
    await local.aclose()  # quitting stops it
    assert second.state.status is ManagedStatus.STOPPED and second_pid is not None
    assert not psutil.pid_exists(second_pid)


def test_the_local_ollama_is_where_ollama_host_says() -> None:
    from desktop_app.domain.ollama import normalize_host_url
    from desktop_app.services.local.servers import local_ollama_host

    assert local_ollama_host({}) == OllamaHost()
    assert local_ollama_host({"OLLAMA_HOST": " 10.0.0.5:11500 "}).url == normalize_host_url("10.0.0.5:11500")
