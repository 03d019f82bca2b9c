"""Accounts as the user manages them: the list lives in settings, the keys in the SecretStore."""

from __future__ import annotations

from collections.abc import Callable

from desktop_app.domain.accounts import Account
from desktop_app.domain.settings import Settings
from desktop_app.services.catalog import CheckResult, ModelCatalog
from desktop_app.services.secrets import SecretStore
from desktop_app.services.settings_store import SettingsStore

Listener = Callable[[], None]


class AccountService:
    def __init__(
        self, *, settings: Settings, settings_store: SettingsStore, secrets: SecretStore, catalog: ModelCatalog,
    ) -> None:
        self._settings = settings
        self._store = settings_store
        self._secrets = secrets
        self._catalog = catalog
        self._listeners: list[Listener] = []
        self._models_listeners: list[Callable[[str], None]] = []

    # --- observation (plain callbacks; the UI adapts them to signals) ---------------------------

    def on_accounts_changed(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_models_changed(self, listener: Callable[[str], None]) -> None:
        self._models_listeners.append(listener)

    def _announce(self) -> None:
        for listener in list(self._listeners):
            listener()

    # --- reading ------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def accounts(self) -> list[Account]:
        return list(self._settings.accounts)

    @property
    def secrets(self) -> SecretStore:
        return self._secrets

    def find(self, account_id: str) -> Account | None:
        return self._settings.account(account_id)

    def cached_models(self, account_id: str) -> tuple[str, ...]:
        return self._catalog.cached_models(account_id)

    async def has_key(self, account_id: str) -> bool:
        return bool(await self._secrets.get(account_id))

    # --- changing -----------------------------------------------------------------------------

    async def update_settings(self, settings: Settings) -> None:
        self._settings = settings
        await self._store.save_async(settings)

    async def save_account(self, account: Account, key: str | None = None) -> None:
        """Add or update `account`. key None leaves the stored key alone; "" removes it."""
        if key is not None:
            key = key.strip()
            if key:
                await self._secrets.set(account.id, key)
            else:
                await self._secrets.delete(account.id)
        await self.update_settings(self._settings.with_account(account))
        self._announce()

    async def remove_account(self, account_id: str) -> None:
        await self._secrets.delete(account_id)
        self._catalog.forget(account_id)
        await self.update_settings(self._settings.without_account(account_id))
        self._announce()
        for listener in list(self._models_listeners):
            listener(account_id)

    # --- network ------------------------------------------------------------------------------

    async def check(self, account: Account, key: str | None = None) -> CheckResult:
        """Check `account` with `key` (or its stored key). Never spends tokens."""
        if key is None:
            key = await self._secrets.get(account.id)
        result = await self._catalog.check(account, key or None)
        if result.models and self.find(account.id) is not None:
            for listener in list(self._models_listeners):
                listener(account.id)
        return result

    async def refresh_models(self, account_id: str) -> tuple[str, ...]:
        """Fetch the account's model list; raises a DomainError when it cannot."""
        account = self.find(account_id)
        if account is None:
            return ()
        models = await self._catalog.fetch_models(account, await self._secrets.get(account_id))
        for listener in list(self._models_listeners):
            listener(account_id)
        return models
