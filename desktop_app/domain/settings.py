"""The settings: one typed, versioned schema. Loading and saving live in services/settings_store."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool
from desktop_app.domain.routes import Route
from desktop_app.domain.telemetry import TelemetrySettings

SCHEMA_VERSION = 1

Theme = Literal["system", "light", "dark"]
AutoTitles = Literal["off", "local", "all"]  # which models name new conversations (services/chat/titles)
_Item = TypeVar("_Item", Account, Pool, Route)


def _put(items: list[_Item], item: _Item) -> list[_Item]:
    """A copy of `items` with `item` in the place of the one with its id, or at the end."""
    copy = list(items)
    for index, existing in enumerate(copy):
        if existing.id == item.id:
            copy[index] = item
            return copy
    copy.append(item)
    return copy


class Settings(BaseModel):
    # Unknown keys are dropped, so a file with a key this version does not know still loads;
    # a file from a *newer* schema is refused instead, since we could not save it back faithfully.
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    accounts: list[Account] = []
    pools: list[Pool] = []
    routes: list[Route] = []
    env_import_offered: bool = False  # the first-run offer to import keys from env vars was made
    last_conversation_id: int | None = None
    theme: Theme = "system"
    auto_titles: AutoTitles = "local"
    request_timeout_s: float = Field(default=60.0, gt=0.0)  # read timeout for model servers
    # How often a cloud account is asked again after a passing failure before any text (domain/retries.py).
    request_retries: int = Field(default=2, ge=0, le=5)
    # Minutes between background checks of every account (a model listing, never a paid call); 0 = off.
    health_check_minutes: int = Field(default=0, ge=0, le=24 * 60)
    llama_server_binary: str = ""  # "" = look on PATH
    gguf_folders: list[str] = []  # folders the user added to the GGUF library
    # The local Ollama was made an account once (when its pane first reached it); after the user
    # removed that account it is made again only when they ask ("Chat with it").
    local_ollama_added: bool = False
    # The account of the llama-server started here (it follows that server from port to port);
    # None in files written before it was kept: that account is then the one with its first name.
    llamacpp_started_here_account: str | None = None
    telemetry: TelemetrySettings = TelemetrySettings()  # Settings > Telemetry export: off, nothing sent

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(f"it was written by a newer version of ModelDesk (schema {value})")
        if value < 1:
            raise ValueError(f"schema version {value} does not exist")
        return value

    def account(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.id == account_id), None)

    def with_account(self, account: Account) -> Settings:
        """A copy with `account` added, or put in the place of the account with the same id."""
        return self.model_copy(update={"accounts": _put(self.accounts, account)})

    def without_account(self, account_id: str) -> Settings:
        """A copy without the account; pools and routes that had it keep their other members."""
        pools = [
            p.model_copy(update={"account_ids": tuple(a for a in p.account_ids if a != account_id)}) for p in self.pools
        ]
        accounts = [a for a in self.accounts if a.id != account_id]
        return self.model_copy(
            update={"accounts": accounts, "pools": pools, "routes": self._routes_without(account_id)}
        )

    def _routes_without(self, target_id: str) -> list[Route]:
        return [
            r.model_copy(update={"targets": tuple(t for t in r.targets if t.target_id != target_id)})
            for r in self.routes
        ]

    def moved_account(self, account_id: str, delta: int) -> Settings:
        """A copy with the account moved `delta` places up (negative) or down (positive)."""
        accounts = list(self.accounts)
        index = next((i for i, a in enumerate(accounts) if a.id == account_id), None)
        if index is None:
            return self
        target = max(0, min(len(accounts) - 1, index + delta))
        accounts.insert(target, accounts.pop(index))
        return self.model_copy(update={"accounts": accounts})

    def pool(self, pool_id: str) -> Pool | None:
        return next((p for p in self.pools if p.id == pool_id), None)

    def with_pool(self, pool: Pool) -> Settings:
        return self.model_copy(update={"pools": _put(self.pools, pool)})

    def without_pool(self, pool_id: str) -> Settings:
        pools = [p for p in self.pools if p.id != pool_id]
        return self.model_copy(update={"pools": pools, "routes": self._routes_without(pool_id)})

    def route(self, route_id: str) -> Route | None:
        return next((r for r in self.routes if r.id == route_id), None)

    def with_route(self, route: Route) -> Settings:
        return self.model_copy(update={"routes": _put(self.routes, route)})

    def without_route(self, route_id: str) -> Settings:
        return self.model_copy(update={"routes": [r for r in self.routes if r.id != route_id]})
