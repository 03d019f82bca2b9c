"""Local model servers as accounts: Ollama hosts, llama-servers, and the llama-server started here.

Each server the user works with is an account, so its models are in the chat's picker. The parts
are `OllamaHosts` (one service per Ollama host), `LlamaCppAccounts` (one account per llama-server)
and `ServerHere` (the process of the one llama-server ModelDesk runs itself, which outlives the
pane that shows it). Methods return what happened (`InPicker`); the panes put it in words.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import DomainError
from desktop_app.domain.llamacpp import ManagedServerSpec
from desktop_app.domain.ollama import OllamaHost, normalize_host_url
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.local.llamacpp import LlamaCppService
from desktop_app.services.local.llamacpp_accounts import LlamaCppAccounts
from desktop_app.services.local.llamacpp_managed import ManagedServer
from desktop_app.services.local.ollama_hosts import OllamaHosts, ServiceFactory
from desktop_app.services.settings import SettingsService


def local_ollama_host(environ: Mapping[str, str] | None = None) -> OllamaHost:
    """Ollama where it listens on this machine: OLLAMA_HOST as Ollama reads it, else the default."""
    configured = (os.environ if environ is None else environ).get("OLLAMA_HOST", "").strip()
    return OllamaHost(url=normalize_host_url(configured)) if configured else OllamaHost()


@dataclass(frozen=True, slots=True)
class InPicker:
    """A server's account and the models of it now in the chat's picker."""

    account: Account
    models: tuple[str, ...] = ()
    new: bool = False  # the account was made just now
    error: DomainError | None = None  # its models could not be listed (the account stays)


class ServerHere:
    """The one llama-server ModelDesk runs itself: starting another stops the first; `aclose` stops it."""

    def __init__(self, llamacpp: LlamaCppService) -> None:
        self._llamacpp = llamacpp
        self._server: ManagedServer | None = None
        self._lock = asyncio.Lock()

    @property
    def server(self) -> ManagedServer | None:
        """The server made last (running, stopped or crashed), if any."""
        return self._server

    async def replace(self, spec: ManagedServerSpec, *, binary_setting: str = "") -> ManagedServer:
        """A server for `spec`, not started yet; the previous one is stopped first."""
        async with self._lock:
            if self._server is not None:
                await self._server.stop()
            self._server = self._llamacpp.managed(spec, binary_setting=binary_setting)
            return self._server

    async def aclose(self) -> None:
        async with self._lock:
            if self._server is not None:
                await self._server.stop()


class LocalServers:
    def __init__(
        self,
        *,
        accounts: AccountService,
        settings: SettingsService,
        secrets: SecretStore,
        llamacpp: LlamaCppService,
        local_ollama: OllamaHost | None = None,
        pulls_file: Path | None = None,
        make_ollama_service: ServiceFactory | None = None,
    ) -> None:
        self._accounts = accounts
        self.ollama = OllamaHosts(
            local=local_ollama or local_ollama_host(),
            accounts=accounts,
            settings=settings,
            secrets=secrets,
            state_file=pulls_file,
            **({"make_service": make_ollama_service} if make_ollama_service else {}),
        )
        self.llamacpp = LlamaCppAccounts(accounts, settings)
        self.here = ServerHere(llamacpp)

    async def _listed(self, account: Account, *, new: bool = False) -> InPicker:
        try:
            models = await self._accounts.refresh_models(account.id)
        except DomainError as exc:
            return InPicker(account, self._accounts.cached_models(account.id), new=new, error=exc)
        return InPicker(account, models, new=new)

    # --- Ollama ------------------------------------------------------------------------------------

    async def ollama_listed(self, host: OllamaHost, names: list[str]) -> InPicker | None:
        """A host's installed models, as its pane just listed them, go into the chat's picker: the
        host's account (made the first time the local Ollama answers) lists them again when they
        differ from the picker's. None when the user removed the local Ollama's account."""
        known = self.ollama.account_for(host.url) is not None
        account = await self.ollama.ensure_account(host)
        if account is None:  # not made again unasked
            return None
        cached = self._accounts.cached_models(account.id)
        if set(names) == set(cached):
            return InPicker(account, cached)
        return await self._listed(account, new=not known)

    async def ollama_for_chat(self, host: OllamaHost, name: str) -> InPicker:
        """ "Chat with it": the host's account (made again if the user removed it) with `name` listed."""
        account = await self.ollama.ensure_account(host, asked=True)
        assert account is not None
        cached = self._accounts.cached_models(account.id)
        return InPicker(account, cached) if name in cached else await self._listed(account)

    # --- llama.cpp ---------------------------------------------------------------------------------

    def llamacpp_urls(self) -> list[str]:
        """The llama-servers to list again when the pane opens (not the one started here last time)."""
        return self.llamacpp.server_urls()

    async def llamacpp_listed(self, url: str, models: list[str], *, started_here: bool) -> InPicker:
        """A llama-server its pane listed: its account, and its `models` in the picker (listed
        again only when they changed)."""
        account = await self.llamacpp.ensure(url, started_here=started_here)
        cached = self._accounts.cached_models(account.id)
        return InPicker(account, cached) if set(models) == set(cached) else await self._listed(account)

    async def llamacpp_for_chat(self, url: str) -> InPicker:
        """ "Use in chat": the server's account (made if need be), its models listed again (all of a
        router's, loaded or not)."""
        return await self._listed(await self.llamacpp.ensure(url))

    async def forget_llamacpp(self, url: str) -> list[Account]:
        """The user took a connected llama-server off the list: its account goes too."""
        return await self.llamacpp.forget(url)

    async def aclose(self) -> None:
        """Stop the server started here; close every Ollama host's service and the pulls ledger."""
        await asyncio.gather(self.here.aclose(), self.ollama.aclose())
