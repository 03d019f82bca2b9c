"""Accounts: a provider, a label and where to reach it. The key is never part of this object."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.providers import PROVIDERS, Provider, provider


def new_account_id() -> str:
    return uuid.uuid4().hex[:12]


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_account_id)
    provider_id: str
    label: str
    base_url: str | None = None  # None: the provider's default

    @field_validator("provider_id")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider {value!r}")
        return value

    @field_validator("label")
    @classmethod
    def _label_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("an account needs a name")
        return value

    @field_validator("base_url")
    @classmethod
    def _clean_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("the base URL must start with http:// or https://")
        return value

    @property
    def provider(self) -> Provider:
        return provider(self.provider_id)

    @property
    def effective_base_url(self) -> str:
        return self.provider.base_url(self.base_url)


class ModelRef(BaseModel):
    """A model as offered by one account: what the picker lists and a conversation remembers."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.model}"
