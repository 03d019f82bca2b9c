"""Organisation admin keys and what they show: provider usage beside the ledger, and the org's API keys.

An admin key is kept in the SecretStore beside the account's key, as the entry "<account id>/admin";
settings.json never holds it. Which local account uses which listed key is found by the key's hint
(its visible start and end), compared with the stored key inside this module only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import BadRequest, DomainError
from desktop_app.domain.org_usage import (
    Comparison,
    OrgKey,
    ProviderCost,
    admin_capable,
    admin_key_problem,
    compare,
    hint_matches,
)
from desktop_app.services.accounts.org_admin import AdminClient, admin_client
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.usage import UsageStore


def entry_name(account_id: str) -> str:
    return f"{account_id}/admin"


@dataclass(frozen=True, slots=True)
class OrgReport:
    """The period's comparison rows and provider costs of every account with an admin key."""

    rows: list[Comparison] = field(default_factory=list)
    costs: list[tuple[str, ProviderCost]] = field(default_factory=list)  # (admin account id, cost)
    problems: list[str] = field(default_factory=list)  # one sentence per account whose call failed
    admin_accounts: int = 0
    keys: list[OrgKey] = field(default_factory=list)  # the organisations' API keys, as `keys()` lists them
    used_by: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key id -> local account ids


@dataclass(frozen=True, slots=True)
class KeyListing:
    keys: list[OrgKey] = field(default_factory=list)
    used_by: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key id -> local account ids
    problems: list[str] = field(default_factory=list)
    admin_accounts: int = 0


class OrgUsageService:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        secrets: SecretStore,
        accounts: Callable[[], Sequence[Account]],
        usage: UsageStore,
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._accounts = accounts
        self._usage = usage

    # --- the admin key ------------------------------------------------------------------------

    async def has_admin_key(self, account_id: str) -> bool:
        return bool(await self._secrets.get(entry_name(account_id)))

    async def set_admin_key(self, account: Account, key: str) -> None:
        """Store `key` ("" removes it); BadRequest when it is no admin key of the account's provider."""
        key = key.strip()
        if not key:
            await self._secrets.delete(entry_name(account.id))
            return
        problem = admin_key_problem(account.provider_id, key)
        if problem:
            raise BadRequest(problem[:1].upper() + problem[1:] + ".", "Paste the organisation admin key.")
        await self._secrets.set(entry_name(account.id), key)

    async def check_admin_key(self, account: Account, typed: str | None = None) -> None:
        """One cheap admin call with the typed (or else the stored) admin key; raises a DomainError."""
        key = (typed or "").strip() or await self._secrets.get(entry_name(account.id)) or ""
        if not key:
            raise BadRequest(f"“{account.label}” has no admin key to check.", "Enter the admin key first.")
        await self._client(account, key).check()

    # --- reading ------------------------------------------------------------------------------

    async def admin_accounts(self) -> list[tuple[Account, str]]:
        found = []
        for account in self._accounts():
            if admin_capable(account.provider_id):
                key = await self._secrets.get(entry_name(account.id), max_age_s=60)
                if key:
                    found.append((account, key))
        return found

    async def report(self, days: int) -> OrgReport:
        """Provider usage and costs of the last `days` UTC days beside the ledger's last `days` days, and
        the organisations' keys (one pass: the keys are needed to match the ledger anyway)."""
        admins = await self.admin_accounts()
        if not admins:
            return OrgReport()
        end = datetime.now(UTC).date()
        start = end - timedelta(days=max(days, 1) - 1)
        local = await self._usage.daily(days=days)
        report = OrgReport(admin_accounts=len(admins))
        for account, key in admins:
            client = self._client(account, key)
            try:
                usage, costs, keys = await asyncio.gather(
                    client.usage(start, end), client.costs(start, end), client.keys()
                )
                used_by = await self._used_by(keys)
            except DomainError as exc:
                report.problems.append(str(exc))
                continue
            names = {k.id: k.name for k in keys}
            report.rows.extend(compare(account.provider_id, usage, local, used_by, names))
            report.costs.extend((account.id, cost) for cost in costs)
            report.keys.extend(replace(k, admin_account_id=account.id) for k in keys)
            report.used_by.update(used_by)
        return report

    async def keys(self) -> KeyListing:
        admins = await self.admin_accounts()
        listing = KeyListing(admin_accounts=len(admins))
        for account, key in admins:
            try:
                keys = await self._client(account, key).keys()
            except DomainError as exc:
                listing.problems.append(str(exc))
                continue
            keys = [replace(k, admin_account_id=account.id) for k in keys]
            listing.keys.extend(keys)
            listing.used_by.update(await self._used_by(keys))
        return listing

    async def disable_key(self, key: OrgKey) -> OrgKey:
        """Switch the key off at the provider (Anthropic: status inactive)."""
        admins = {account.id: (account, secret) for account, secret in await self.admin_accounts()}
        if key.admin_account_id not in admins:
            raise BadRequest("The admin key that listed this key is gone.", "Reload the keys list.")
        account, secret = admins[key.admin_account_id]
        return await self._client(account, secret).disable_key(key)

    # --- internals ----------------------------------------------------------------------------

    def _client(self, account: Account, key: str) -> AdminClient:
        return admin_client(
            account.provider_id, self._http, base_url=account.effective_base_url, admin_key=key, label=account.label
        )

    async def _used_by(self, keys: Sequence[OrgKey]) -> dict[str, tuple[str, ...]]:
        """Which local accounts (of the same provider) hold a key matching each listed key's hint."""
        stored = []
        providers = {k.provider_id for k in keys}
        for account in self._accounts():
            if account.provider_id in providers:
                secret = await self._secrets.get(account.id, max_age_s=60)
                if secret:
                    stored.append((account, secret))
        return {
            k.id: tuple(a.id for a, s in stored if a.provider_id == k.provider_id and hint_matches(k.hint, s))
            for k in keys
        }
