"""The llama-servers the user works with, as llama.cpp accounts.

A server listed in the llama.cpp pane (connected by address, or started there) is an account, so
its models are in the chat's picker and it is listed again next time. The server started in the
pane gets a free port each time; it keeps one account, whose address follows it. That account is
known by the id kept in settings (`llamacpp_started_here_account`), so the user may rename it.
"""

from __future__ import annotations

import asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.urls import same_server, server_root
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.settings import SettingsService

PROVIDER = "llamacpp"
MANAGED_LABEL = "llama.cpp (started here)"  # the first name of the started-here account


def _base_url(url: str) -> str:
    """A server's root ("http://127.0.0.1:8080") as an account's base URL (".../v1")."""
    return server_root(url) + "/v1"


class LlamaCppAccounts:
    def __init__(self, accounts: AccountService, settings: SettingsService) -> None:
        self._accounts = accounts
        self._settings = settings
        self._lock = asyncio.Lock()  # one change at a time: two looks at a new server make one account

    def _of_provider(self) -> list[Account]:
        return [a for a in self._accounts.accounts if a.provider_id == PROVIDER]

    def started_here(self) -> Account | None:
        """The account of the server started here, if it has one."""
        settings = self._settings.current
        if settings.llamacpp_started_here_account is None:  # settings from before the id was kept
            return next((a for a in self._of_provider() if a.label == MANAGED_LABEL), None)
        account = settings.account(settings.llamacpp_started_here_account)
        return account if account is not None and account.provider_id == PROVIDER else None

    def _not_started_here(self) -> list[Account]:
        here = self.started_here()
        return [a for a in self._of_provider() if here is None or a.id != here.id]

    def server_urls(self) -> list[str]:
        """The servers to list again: every llama.cpp account but the one of the server started
        here last time (its port is gone with it)."""
        return [a.effective_base_url for a in self._not_started_here()]

    async def ensure(self, url: str, *, started_here: bool = False) -> Account:
        """The server's account, made now if it has none."""
        base_url = _base_url(url)
        async with self._lock:
            account = next((a for a in self._of_provider() if same_server(a.effective_base_url, base_url)), None)
            if account is not None or not started_here:
                if account is None:
                    host = base_url.split("://", 1)[-1].removesuffix("/v1")
                    account = Account(provider_id=PROVIDER, base_url=base_url, label=f"llama.cpp at {host}")
                    await self._accounts.save_account(account, "")
                return account
            account = self.started_here()
            if account is not None:  # the server started here, now on another port
                account = account.model_copy(update={"base_url": base_url})
                await self._accounts.save_account(account)
            else:
                account = Account(provider_id=PROVIDER, base_url=base_url, label=MANAGED_LABEL)
                await self._accounts.save_account(account, "")
            if self._settings.current.llamacpp_started_here_account != account.id:
                await self._settings.update(llamacpp_started_here_account=account.id)
            return account

    async def forget(self, url: str) -> list[Account]:
        """The user took a connected server off the list: its accounts go too (not the started-here one)."""
        base_url = _base_url(url)
        async with self._lock:
            gone = [a for a in self._not_started_here() if same_server(a.effective_base_url, base_url)]
            for account in gone:
                await self._accounts.remove_account(account.id)
        return gone
