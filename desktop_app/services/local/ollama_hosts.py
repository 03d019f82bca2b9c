"""Every Ollama host the user works with, and one `OllamaService` per host.

The hosts are the local default (OLLAMA_HOST, else 127.0.0.1:11434) plus every Ollama account:
an Ollama host the user adds is saved as an account of provider "ollama", so its optional bearer
key lives in the keyring like every other key, and its models are in the chat's picker like every
other account's. The local default becomes an account the same way the first time the user
reaches it (`ensure_account`), which is what puts its installed models in the picker.

Services are made on first use and kept while the app runs, so a pull keeps going when the user
looks at another host. All of them write one unfinished-pulls ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import BadRequest
from desktop_app.domain.http_fields import check_base_url
from desktop_app.domain.ollama import OllamaHost, normalize_host_url
from desktop_app.domain.urls import same_server
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.events import Unsubscribe
from desktop_app.services.local.ollama import OllamaService, PullLedger
from desktop_app.services.settings import SettingsService

log = logging.getLogger(__name__)

PROVIDER = "ollama"
LOCAL_LABEL = "Local Ollama"


class ServiceFactory(Protocol):
    def __call__(self, host: OllamaHost, *, api_key: str | None, ledger: PullLedger) -> OllamaService: ...


def _make_service(host: OllamaHost, *, api_key: str | None, ledger: PullLedger) -> OllamaService:
    return OllamaService(host, api_key=api_key, ledger=ledger)


def same_url(a: str, b: str) -> bool:
    """`same_server` for addresses as typed for Ollama (no port: Ollama's 11434)."""
    return same_server(normalize_host_url(a), normalize_host_url(b))


class OllamaHosts:
    def __init__(
        self,
        *,
        local: OllamaHost,
        accounts: AccountService,
        settings: SettingsService,
        secrets: SecretStore,
        state_file: Path | None = None,
        make_service: ServiceFactory = _make_service,
    ) -> None:
        self._local = local
        self._accounts = accounts
        self._settings = settings
        self._secrets = secrets
        self._ledger = PullLedger(state_file)
        self._make_service = make_service
        self._services: dict[str, tuple[OllamaService, str | None]] = {}  # url -> (service, its key)
        self._lock = asyncio.Lock()  # guards the services
        self._account_lock = asyncio.Lock()  # two looks at a new host make one account

    # --- which hosts ---------------------------------------------------------------------------

    @property
    def local(self) -> OllamaHost:
        return self._local

    def hosts(self) -> list[OllamaHost]:
        """The local default first (as its account, once it has one), then the other Ollama accounts."""
        accounts = [a for a in self._accounts.accounts if a.provider_id == PROVIDER]
        hosts = [self._host_of(a) for a in accounts]
        local = next((h for h in hosts if same_url(h.url, self._local.url)), None)
        if local is not None:
            hosts.remove(local)
        return [local or self._local, *hosts]

    def account_for(self, url: str) -> Account | None:
        return next(
            (a for a in self._accounts.accounts if a.provider_id == PROVIDER and same_url(a.effective_base_url, url)),
            None,
        )

    def on_hosts_changed(self, listener: Callable[[], None]) -> Unsubscribe:
        return self._accounts.on_accounts_changed(listener)

    @staticmethod
    def _host_of(account: Account) -> OllamaHost:
        return OllamaHost(url=normalize_host_url(account.effective_base_url), key_ref=account.id, label=account.label)

    # --- adding and removing -------------------------------------------------------------------

    async def add(self, *, url: str, label: str = "", key: str = "") -> OllamaHost:
        """Save a host as an Ollama account (its key, if any, in the keyring) and return it."""
        typed = url.strip()
        try:
            url = normalize_host_url(typed)
        except ValueError:  # the stdlib's words ("Invalid IPv6 URL"): check_base_url says it better
            url = typed if "://" in typed else f"http://{typed}"
        try:
            url = check_base_url(url)
        except ValueError as exc:
            refusal = str(exc).replace("the base URL", "the address")
            raise BadRequest(
                f"“{typed}” cannot be used: {refusal}.", "Type it like 10.0.0.5:11434 or https://ollama.example.com."
            ) from None
        if self.account_for(url) is not None:
            raise BadRequest(f"{OllamaHost(url).address} is already in the list.", "Pick it in the host list.")
        account = Account(
            provider_id=PROVIDER, label=label.strip() or f"Ollama at {OllamaHost(url).address}", base_url=url
        )
        await self._accounts.save_account(account, key)
        return self._host_of(account)

    async def ensure_account(self, host: OllamaHost, *, asked: bool = False) -> Account | None:
        """The host's account, saved now if it has none yet: the local default gets one the first
        time; after the user removed that one, only when they `asked` (None otherwise)."""
        async with self._account_lock:
            account = self.account_for(host.url)
            if account is not None:
                return account
            local = same_url(host.url, self._local.url)
            if local and not asked and self._settings.current.local_ollama_added:
                return None
            account = Account(
                provider_id=PROVIDER, label=LOCAL_LABEL if local else host.label, base_url=normalize_host_url(host.url)
            )
            await self._accounts.save_account(account, "")
            if local and not self._settings.current.local_ollama_added:
                await self._settings.update(local_ollama_added=True)
            return account

    async def remove(self, host: OllamaHost) -> None:
        """Forget a host the user added (its account and key). Its running pulls are cancelled."""
        account = self.account_for(host.url)
        if account is None:
            raise BadRequest(
                f"{host.address} is this computer's Ollama; it cannot be removed.", "Pick another host to remove."
            )
        async with self._lock:
            entry = self._services.pop(normalize_host_url(host.url), None)
        if entry is not None:
            await entry[0].aclose()
        await self._accounts.remove_account(account.id)

    # --- services --------------------------------------------------------------------------------

    async def service(self, host: OllamaHost) -> OllamaService:
        """The service for `host`, made on first use; made again when its key was changed."""
        url = normalize_host_url(host.url)
        account = self.account_for(url)
        key = (await self._secrets.get(account.id) or None) if account is not None else None
        async with self._lock:
            entry = self._services.get(url)
            if entry is not None and (entry[1] == key or any(not j.state.finished for j in entry[0].pull_jobs())):
                return entry[0]
            stale = entry[0] if entry is not None else None
            label = account.label if account is not None else self._local.label
            service = self._make_service(
                OllamaHost(url=url, key_ref=account.id if account else None, label=label),
                api_key=key,
                ledger=self._ledger,
            )
            self._services[url] = (service, key)
        if stale is not None:
            await stale.aclose()
        return service

    def first_service(self) -> OllamaService:
        """The first host's service, made without waiting for the keyring (for the pane's first
        paint); `service()` makes it again with the key if that host's account has one."""
        host = self.hosts()[0]
        url = normalize_host_url(host.url)
        entry = self._services.get(url)
        if entry is None:
            entry = self._services[url] = (self._make_service(host, api_key=None, ledger=self._ledger), None)
        return entry[0]

    def services(self) -> list[OllamaService]:
        return [service for service, _key in self._services.values()]

    async def aclose(self) -> None:
        async with self._lock:
            services, self._services = self.services(), {}
        await asyncio.gather(*(s.aclose() for s in services), return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self._ledger.close)
