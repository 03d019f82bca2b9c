"""Accounts as the user manages them: the list lives in the settings (changed through the
SettingsService), the keys in the SecretStore."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from desktop_app.domain.accounts import Account, new_account_id
from desktop_app.domain.errors import DomainError
from desktop_app.domain.pools import Pool
from desktop_app.domain.providers import PROVIDERS, ModelListStyle
from desktop_app.domain.routes import Route
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts import header_secrets
from desktop_app.services.accounts.catalog import CheckResult, CheckStatus, ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.accounts.state import AccountStates
from desktop_app.services.events import Listeners, Unsubscribe
from desktop_app.services.settings import SettingsService

Listener = Callable[[], None]


@dataclass(frozen=True, slots=True)
class EnvKey:
    """A provider key found in the environment (the value is held only until it is imported)."""

    provider_id: str
    variable: str
    secret: str

    @property
    def masked(self) -> str:
        return f"{self.secret[:6]}…{self.secret[-4:]}" if len(self.secret) > 12 else "••••"


def find_env_keys(environ: Mapping[str, str] | None = None) -> list[EnvKey]:
    """Keys in the usual env vars (ANTHROPIC_API_KEY, OPENAI_API_KEY, ...), one per variable."""
    environ = os.environ if environ is None else environ
    found = []
    for provider in PROVIDERS.values():
        for variable in provider.env_vars:
            value = environ.get(variable, "").strip()
            if value:
                found.append(EnvKey(provider.id, variable, value))
    return found


class AccountService:
    """Over 30 methods on purpose: the one writer of accounts, pools and keys, so each change is announced once."""

    def __init__(
        self,
        *,
        settings: SettingsService,
        secrets: SecretStore,
        catalog: ModelCatalog,
        states: AccountStates | None = None,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._catalog = catalog
        self._states = states or AccountStates()
        self._bundled: dict[str, tuple[str, ...]] = {}  # LiteLLM's list, for accounts whose provider is unreachable
        self._model_notices: dict[str, str] = {}
        self._accounts_changed: Listeners[[]] = Listeners("accounts changed")
        self._models_changed: Listeners[[str]] = Listeners("models changed")

    # --- observation (plain callbacks; the UI adapts them to signals) ---------------------------

    def on_accounts_changed(self, listener: Listener) -> Unsubscribe:
        return self._accounts_changed.subscribe(listener)

    def on_models_changed(self, listener: Callable[[str], None]) -> Unsubscribe:
        """`listener(account_id)` when an account's list of models may have changed."""
        return self._models_changed.subscribe(listener)

    def _announce(self) -> None:
        self._accounts_changed.emit()

    # --- reading ------------------------------------------------------------------------------

    @property
    def accounts(self) -> list[Account]:
        return list(self._settings.current.accounts)

    @property
    def keys_kept_for_session(self) -> str:
        """Why keys are kept in memory for this session only ("" while they go to the OS keyring)."""
        return "" if self._secrets.persistent else self._secrets.notice or ""

    @property
    def states(self) -> AccountStates:
        return self._states

    def find(self, account_id: str) -> Account | None:
        return self._settings.current.account(account_id)

    def cached_models(self, account_id: str) -> tuple[str, ...]:
        return self._catalog.cached_models(account_id) or self._bundled.get(account_id, ())

    def target_models(self, target_id: str) -> tuple[str, ...]:
        """The models of an account, or those a pool's members have in common (any member may answer)."""
        pool = self.pool(target_id)
        if pool is None:
            return self.cached_models(target_id)
        lists = [set(self.cached_models(a)) for a in pool.account_ids]
        return tuple(sorted(set.intersection(*lists))) if lists else ()

    async def probe(self, account: Account) -> DomainError | None:
        """Why the account's model listing failed just now, or None when it answered (never a paid call)."""
        key = await self._secrets.get(account.id)
        try:
            await self._catalog.fetch_models(await self.resolved(account), key or None)
        except DomainError as exc:
            return exc
        return None

    async def has_key(self, account_id: str) -> bool:
        return bool(await self._secrets.get(account_id))

    # --- changing -----------------------------------------------------------------------------

    async def save_account(
        self, account: Account, key: str | None = None, secret_values: dict[str, str] | None = None
    ) -> None:
        """Add or update `account`. key None leaves the stored key alone; "" removes it.

        `secret_values`: new values of its credential headers (the others keep theirs; headers
        no longer named in `account.secret_headers` are forgotten).
        """
        await self._store_secret_headers(account, secret_values or {})
        if key is not None:
            key = key.strip()
            if key:
                await self._secrets.set(account.id, key)
            else:
                await self._secrets.delete(account.id)
            self._states.clear(account.id)  # a new key: no longer "broken", no stale cooldown
        await self._settings.update_with(lambda s: s.with_account(account))
        self._announce()

    async def _store_secret_headers(self, account: Account, typed: dict[str, str]) -> None:
        previous = self.find(account.id)
        if not account.secret_headers and not (previous is not None and previous.secret_headers):
            return  # the common case: no keyring round trip
        stored = await header_secrets.read(self._secrets, account.id)
        wanted = {name: typed.get(name) or stored.get(name, "") for name in account.secret_headers}
        wanted = {name: value for name, value in wanted.items() if value}
        if wanted != stored:
            await header_secrets.write(self._secrets, account.id, wanted)

    async def adopt_header_secrets(self, found: dict[str, dict[str, str]]) -> None:
        """Move credential headers read from an older settings file into the keyring, then write
        the file again without them."""
        if not found:
            return
        for account_id, values in found.items():
            stored = await header_secrets.read(self._secrets, account_id)
            await header_secrets.write(self._secrets, account_id, {**values, **stored})
        await self._settings.save()

    async def resolved(self, account: Account, typed: dict[str, str] | None = None) -> Account:
        """`account` with its credential headers' values (typed ones first, then the stored ones)."""
        if not account.secret_headers:
            return account
        stored = await header_secrets.read(self._secrets, account.id)
        return account.with_secret_values({**stored, **(typed or {})})

    async def duplicate_account(self, account_id: str) -> Account | None:
        """A copy of the account (same provider, URL, headers; key copied too) placed after it."""
        original = self.find(account_id)
        if original is None:
            return None
        copy = original.model_copy(
            update={"id": new_account_id(), "label": f"{original.label} (copy)", "organization_id": None}
        )
        key = await self._secrets.get(account_id)
        if key:
            await self._secrets.set(copy.id, key)
        if original.secret_headers:
            await header_secrets.write(self._secrets, copy.id, await header_secrets.read(self._secrets, account_id))

        def placed_after_original(settings: Settings) -> Settings:
            settings = settings.with_account(copy)
            index = next((i for i, a in enumerate(settings.accounts) if a.id == account_id), None)
            if index is None:  # the original was removed meanwhile: the copy stays last
                return settings
            return settings.moved_account(copy.id, index + 1 - (len(settings.accounts) - 1))

        await self._settings.update_with(placed_after_original)
        self._announce()
        return copy

    async def move_account(self, account_id: str, delta: int) -> None:
        await self._settings.update_with(lambda s: s.moved_account(account_id, delta))
        self._announce()

    async def set_enabled(self, account_id: str, enabled: bool) -> None:
        account = self.find(account_id)
        if account is not None and account.enabled != enabled:
            await self.save_account(account.model_copy(update={"enabled": enabled}))

    async def import_env_keys(self, keys: list[EnvKey]) -> list[Account]:
        """Create one account per chosen env key, its key in the keyring. Only with consent."""
        created = []
        for found in keys:
            provider = PROVIDERS[found.provider_id]
            account = Account(provider_id=provider.id, label=f"{provider.name} ({found.variable})")
            await self._secrets.set(account.id, found.secret)
            created.append(account)

        def with_created(settings: Settings) -> Settings:
            for account in created:
                settings = settings.with_account(account)
            return settings.model_copy(update={"env_import_offered": True})

        await self._settings.update_with(with_created)
        self._announce()
        return created

    @property
    def env_import_offered(self) -> bool:
        """The first-run offer to import keys from env vars was made (taken or declined)."""
        return self._settings.current.env_import_offered

    async def decline_env_import(self) -> None:
        await self._settings.update(env_import_offered=True)

    # --- pools --------------------------------------------------------------------------------

    @property
    def pools(self) -> list[Pool]:
        return list(self._settings.current.pools)

    def pool(self, pool_id: str) -> Pool | None:
        return self._settings.current.pool(pool_id)

    async def save_pool(self, pool: Pool) -> None:
        """Add or update a pool; every member must be an account of the pool's provider."""
        for account_id in pool.account_ids:
            account = self.find(account_id)
            if account is None or account.provider_id != pool.provider_id:
                raise ValueError(
                    f"Every account in pool “{pool.label}” must be a {PROVIDERS[pool.provider_id].name} account."
                )
        await self._settings.update_with(lambda s: s.with_pool(pool))
        self._announce()

    async def remove_pool(self, pool_id: str) -> None:
        await self._settings.update_with(lambda s: s.without_pool(pool_id))
        self._announce()

    # --- routes -------------------------------------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        return list(self._settings.current.routes)

    def route(self, route_id: str) -> Route | None:
        return self._settings.current.route(route_id)

    async def save_route(self, route: Route) -> None:
        """Add or update a route; every target must be an existing account or pool."""
        for target in route.targets:
            if self.find(target.target_id) is None and self.pool(target.target_id) is None:
                raise ValueError(f"A target of route “{route.label}” is no longer an account or pool; remove it.")
        await self._settings.update_with(lambda s: s.with_route(route))
        self._announce()

    @property
    def health_check_minutes(self) -> int:
        return self._settings.current.health_check_minutes

    async def set_health_check_minutes(self, minutes: int) -> None:
        """How often every account's model list is asked in the background; 0 turns it off."""
        await self._settings.update(health_check_minutes=minutes)

    @property
    def request_retries(self) -> int:
        return self._settings.current.request_retries

    async def set_request_retries(self, retries: int) -> None:
        """How often an account is asked again after a passing failure before any text (0-5)."""
        await self._settings.update(request_retries=retries)

    async def remove_route(self, route_id: str) -> None:
        await self._settings.update_with(lambda s: s.without_route(route_id))
        self._announce()

    async def remove_account(self, account_id: str) -> None:
        await self._secrets.delete(account_id)
        await header_secrets.write(self._secrets, account_id, {})
        await self._secrets.delete(f"{account_id}/admin")  # an organisation admin key (org_usage.entry_name)
        self._catalog.forget(account_id)
        await self._settings.update_with(lambda s: s.without_account(account_id))
        self._announce()
        self._models_changed.emit(account_id)

    # --- sharing -----------------------------------------------------------------------------

    async def export_proxy_config(self, path) -> list[str]:
        """Write a LiteLLM Proxy config.yaml of these accounts and pools; keys only as env var names.

        Returns every environment variable the proxy needs set: its master key, then account keys.
        """
        from desktop_app.domain.cloud_secrets import parse_aws_credentials
        from desktop_app.services.accounts.proxy_export import (
            config_text,
            env_vars_to_set,
            proxy_config,
            write_proxy_config,
        )

        secrets = {a.id: await self._secrets.get(a.id) for a in self.accounts}
        keyed = [account_id for account_id, secret in secrets.items() if secret]
        session_tokens = []
        for account in self.accounts:
            if account.provider.secret_kind == "aws" and secrets[account.id]:
                with contextlib.suppress(ValueError):  # unreadable: Check says so; exported without one
                    if "aws_session_token" in parse_aws_credentials(secrets[account.id] or ""):
                        session_tokens.append(account.id)
        models = {a.id: self._catalog.cached_models(a.id) for a in self.accounts}
        settings = self._settings.current
        # The routes' targets' context windows (LiteLLM's map, or an Ollama server's word).
        windows = {
            (t.target_id, t.model): (await self.model_info(t.target_id, t.model)).context_window
            for route in settings.routes
            for t in route.targets
        }
        config = proxy_config(settings, models, keyed=keyed, session_tokens=session_tokens, windows=windows)
        await write_proxy_config(path, config_text(settings, config))
        return list(env_vars_to_set(settings, config))

    # --- network ------------------------------------------------------------------------------

    async def check(
        self, account: Account, key: str | None = None, secret_values: dict[str, str] | None = None
    ) -> CheckResult:
        """Check `account` with `key` (or its stored key) and its credential headers (typed, else
        stored). Never spends tokens."""
        if key is None:
            key = await self._secrets.get(account.id)
        sent_as = await self.resolved(account, secret_values)
        result = await self._catalog.check(sent_as, key or None)
        if result.status is CheckStatus.OK and account.provider.spend_path:
            result = await self._with_spend(sent_as, key or None, result)
        if result.status is CheckStatus.OK and self.find(account.id) is not None:
            self._states.clear(account.id)
            organization = getattr(result, "organization_id", None)
            stored = self.find(account.id)
            if organization and stored is not None and stored.organization_id != organization:
                await self.save_account(stored.model_copy(update={"organization_id": organization}))
        if result.models and self.find(account.id) is not None:
            self._models_changed.emit(account.id)
        return result

    async def model_info(self, target_id: str, model: str):
        """What LiteLLM knows of `model` as offered by an account or pool (context, limits, price);
        for an Ollama account, what its server says the model can do."""
        from desktop_app.domain.models import ModelInfo
        from desktop_app.domain.pools import is_pool_id

        if is_pool_id(target_id):
            pool = self.pool(target_id)
            target_id = pool.account_ids[0] if pool and pool.account_ids else ""
        account = self.find(target_id)
        if account is None:
            return ModelInfo(model)
        if account.provider.list_style is ModelListStyle.OLLAMA:  # asked of the server, with its key
            key = await self._secrets.get(account.id)
            return await self._catalog.model_info(await self.resolved(account), model, key or None)
        return await self._catalog.model_info(account, model)

    async def _with_spend(self, account: Account, key: str | None, result: CheckResult) -> CheckResult:
        """A LiteLLM Proxy key: add what it has spent (and its budget) to the check's sentence."""
        from dataclasses import replace

        from desktop_app.domain.errors import DomainError

        try:
            spend = await self._catalog.key_spend(account, key)
        except DomainError as exc:
            return replace(result, message=f"{result.message} {exc.message}")
        budget = f" of ${spend.max_budget:,.2f}" if spend.max_budget is not None else ""
        return replace(result, message=f"{result.message} This key has spent ${spend.spend:,.2f}{budget}.")

    async def refresh_models(self, account_id: str, *, refresh: bool = True) -> tuple[str, ...]:
        """The account's models through the three tiers (fresh cache, the provider, LiteLLM's bundled
        list). Raises a DomainError only when no list at all can be offered; `model_notice(id)` says
        when the list is not the provider's current one."""
        account = self.find(account_id)
        if account is None:
            return ()
        result = await self._catalog.models(
            await self.resolved(account), await self._secrets.get(account_id), refresh=refresh
        )
        if result.source == "bundled":
            self._bundled[account_id] = result.models
        elif result.models:
            self._bundled.pop(account_id, None)
        self._model_notices[account_id] = result.notice or ""
        self._models_changed.emit(account_id)
        if result.error is not None and not result.models:
            raise result.error
        return result.models

    def model_notice(self, account_id: str) -> str:
        return self._model_notices.get(account_id, "")
