"""The llama-servers the user works with, as llama.cpp accounts.

A server listed in the llama.cpp pane (connected by address, or started there) is an account, so
its models are in the chat's picker and it is listed again next time. The server started in the
pane gets a free port each time; it keeps one account, `MANAGED_LABEL`, whose address follows it.
"""

from __future__ import annotations

import asyncio

from desktop_app.domain.accounts import Account
from desktop_app.domain.urls import same_server, server_root
from desktop_app.services.accounts import AccountService

PROVIDER = "llamacpp"
MANAGED_LABEL = "llama.cpp (started here)"


def _base_url(url: str) -> str:
    """A server's root ("http://127.0.0.1:8080") as an account's base URL (".../v1")."""
    return server_root(url) + "/v1"


class LlamaCppAccounts:
    def __init__(self, accounts: AccountService) -> None:
        self._accounts = accounts
        self._lock = asyncio.Lock()  # one change at a time: two looks at a new server make one account

    def _of_provider(self) -> list[Account]:
        return [a for a in self._accounts.accounts if a.provider_id == PROVIDER]

    def server_urls(self) -> list[str]:
        """The servers to list again: every llama.cpp account but the one of the server started
        here last time (its port is gone with it)."""
        return [a.effective_base_url for a in self._of_provider() if a.label != MANAGED_LABEL]

    async def ensure(self, url: str, *, started_here: bool = False) -> Account:
        """The server's account, made now if it has none."""
        base_url = _base_url(url)
        async with self._lock:
            accounts = self._of_provider()
            account = next((a for a in accounts if same_server(a.effective_base_url, base_url)), None)
            if account is None and started_here:
                account = next((a for a in accounts if a.label == MANAGED_LABEL), None)
                if account is not None:  # the server started here, now on another port
                    account = account.model_copy(update={"base_url": base_url})
                    await self._accounts.save_account(account)
            if account is None:
                host = base_url.split("://", 1)[-1].removesuffix("/v1")
                account = Account(provider_id=PROVIDER, base_url=base_url,
                                  label=MANAGED_LABEL if started_here else f"llama.cpp at {host}")
                await self._accounts.save_account(account, "")
            return account

    async def sync(self, url: str, models: list[str], *, started_here: bool = False) -> Account:
        """Make sure the server has an account and the picker has its `models` (listed again only
        when they changed). Raises the DomainError of a failed listing."""
        account = await self.ensure(url, started_here=started_here)
        if set(models) != set(self._accounts.cached_models(account.id)):
            await self._accounts.refresh_models(account.id)
        return account

    async def forget(self, url: str) -> list[Account]:
        """The user took a connected server off the list: its accounts go too (not the started-here one)."""
        base_url = _base_url(url)
        async with self._lock:
            gone = [a for a in self._of_provider() if same_server(a.effective_base_url, base_url) and a.label != MANAGED_LABEL]
            for account in gone:
                await self._accounts.remove_account(account.id)
        return gone
