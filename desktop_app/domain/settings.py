"""The settings: one typed, versioned schema. Loading and saving live in services/settings_store."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.accounts import Account

SCHEMA_VERSION = 1

Theme = Literal["system", "light", "dark"]


class Settings(BaseModel):
    # Unknown keys are dropped, so a file with a key this version does not know still loads;
    # a file from a *newer* schema is refused instead, since we could not save it back faithfully.
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    accounts: list[Account] = []
    last_conversation_id: int | None = None
    theme: Theme = "system"
    request_timeout_s: float = Field(default=60.0, gt=0.0)  # read timeout for model servers

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
        accounts = list(self.accounts)
        for index, existing in enumerate(accounts):
            if existing.id == account.id:
                accounts[index] = account
                break
        else:
            accounts.append(account)
        return self.model_copy(update={"accounts": accounts})

    def without_account(self, account_id: str) -> Settings:
        return self.model_copy(update={"accounts": [a for a in self.accounts if a.id != account_id]})
