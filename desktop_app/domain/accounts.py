"""Accounts: a provider, a label and where to reach it. The key is never part of this object."""

from __future__ import annotations

import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from desktop_app.domain.http_fields import check_base_url, check_header, is_credential_header
from desktop_app.domain.organizations import is_organization_id
from desktop_app.domain.providers import (
    AWS_REGION,
    AZURE_API_VERSION,
    AZURE_API_VERSION_PATTERN,
    PROVIDERS,
    VERTEX_LOCATION,
    Provider,
    provider,
)
from desktop_app.domain.text import without_bidi_controls

COLOURS = ("", "#d97706", "#2563eb", "#16a34a", "#db2777", "#7c3aed", "#0891b2", "#dc2626")


def new_account_id() -> str:
    return uuid.uuid4().hex[:12]


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_account_id)
    provider_id: str
    label: str
    base_url: str | None = None  # None: the provider's default
    colour: str = ""  # a tag colour ("#rrggbb") to tell accounts apart at a glance
    extra_headers: dict[str, str] = Field(default_factory=dict)  # never a credential (see secret_headers)
    # Names of credential headers (Cookie, api-key...) whose values live in the keyring, like the key.
    secret_headers: tuple[str, ...] = ()
    enabled: bool = True
    organization_id: str | None = None  # as reported by the provider (anthropic-organization-id)
    daily_budget_tokens: int | None = Field(default=None, ge=1)
    daily_budget_usd: float | None = Field(default=None, gt=0)
    # Azure OpenAI: the data-plane API version, and deployment names typed by the user (listed too).
    api_version: str | None = None
    deployments: tuple[str, ...] = ()
    # Google Vertex AI: the project (None: the service account's own) and the region.
    project: str | None = None
    location: str | None = None
    # Amazon Bedrock: the region, and a named AWS profile that signs instead of stored keys.
    region: str | None = None
    aws_profile: str | None = None

    @field_validator("provider_id")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider {value!r}")
        return value

    @field_validator("label")
    @classmethod
    def _label_not_blank(cls, value: str) -> str:
        value = without_bidi_controls(value).strip()
        if not value:
            raise ValueError("an account needs a name")
        return value

    @field_validator("organization_id")
    @classmethod
    def _organization_shape(cls, value: str | None) -> str | None:
        # Anything else (a key an older version stored from a hostile header) is dropped, not shown.
        return value if value and is_organization_id(value) else None

    @field_validator("base_url")
    @classmethod
    def _clean_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value:
            return None
        return check_base_url(value)

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("the colour must look like #rrggbb")
        return value.lower()

    @field_validator("extra_headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        clean: dict[str, str] = {}
        for name, header_value in value.items():
            name, header_value = check_header(name, header_value)
            if is_credential_header(name):
                raise ValueError(f"the {name} header carries a credential, so it is kept in the keyring")
            clean[name] = header_value
        return clean

    @field_validator("secret_headers")
    @classmethod
    def _secret_headers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            check_header(name, "")
        return tuple(dict.fromkeys(value))

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if not re.fullmatch(AZURE_API_VERSION_PATTERN, value):
            raise ValueError("the API version must look like 2024-10-21 or 2025-04-01-preview")
        return value

    @field_validator("deployments")
    @classmethod
    def _deployments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(name.strip() for name in value if name.strip()))
        for name in names:
            # Azure allows letters, digits, "-", "_" and "."; the name goes into a URL path.
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise ValueError(f"“{name}” is not a deployment name (letters, digits, “-”, “_” and “.” only)")
        return names

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", value):
            raise ValueError("a Google Cloud project id is 6 to 30 lowercase letters, digits and hyphens")
        return value or None

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and not re.fullmatch(r"[a-z]+(-[a-z]+[0-9]*)?", value):
            raise ValueError("the location must be a Google Cloud region such as us-east5 or europe-west1, or global")
        return value or None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value):
            raise ValueError("the region must be an AWS region such as us-east-1 or eu-central-1")
        return value or None

    @field_validator("aws_profile")
    @classmethod
    def _aws_profile(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and not re.fullmatch(r"[A-Za-z0-9_.+=,@-]{1,64}", value):
            raise ValueError("an AWS profile name has letters, digits and _ . + = , @ - only")
        return value or None

    @model_validator(mode="after")
    def _key_header_not_doubled(self) -> Account:
        if self.provider_id == "gemini" and "x-goog-api-key" in {n.lower() for n in self.secret_headers}:
            raise ValueError("the X-Goog-Api-Key header is set by ModelDesk (put keys in the key field)")
        if self.provider_id == "azure" and self.base_url is None:
            raise ValueError("an Azure OpenAI account needs its endpoint as base URL (https://NAME.openai.azure.com)")
        return self

    @property
    def azure_api_version(self) -> str:
        return self.api_version or AZURE_API_VERSION

    @property
    def vertex_location(self) -> str:
        return self.location or VERTEX_LOCATION

    @property
    def aws_region(self) -> str:
        return self.region or AWS_REGION

    @property
    def litellm_params(self) -> dict[str, str]:
        """What LiteLLM's adapter for this provider needs beyond model, api_base and key (never a secret)."""
        if self.provider_id == "azure":
            return {"api_version": self.azure_api_version}
        if self.provider_id == "vertex":
            project = {"vertex_project": self.project} if self.project else {}
            return {"vertex_location": self.vertex_location, **project}
        if self.provider_id == "bedrock":
            profile = {"aws_profile_name": self.aws_profile} if self.aws_profile else {}
            return {"aws_region_name": self.aws_region, **profile}
        return {}

    _secret_values: dict[str, str] = PrivateAttr(default_factory=dict)

    def with_secret_values(self, values: dict[str, str]) -> Account:
        """A copy that sends `values` (this account's credential headers, read from the keyring).

        The values are private to the object: never dumped, so they cannot reach settings.json.
        """
        copy = self.model_copy()
        copy._secret_values = {name: values[name] for name in self.secret_headers if values.get(name)}
        return copy

    @property
    def request_headers(self) -> dict[str, str]:
        """What is sent with every request: the extra headers and the credential headers' values."""
        return {**self.extra_headers, **self._secret_values}

    @property
    def provider(self) -> Provider:
        return provider(self.provider_id)

    @property
    def effective_base_url(self) -> str:
        if self.provider_id == "vertex" and not self.base_url:
            location = self.vertex_location
            host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
            return f"https://{host}"
        if self.provider_id == "bedrock" and not self.base_url:
            return f"https://bedrock-runtime.{self.aws_region}.amazonaws.com"
        return self.provider.base_url(self.base_url)


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` lines (as typed in the form) into a dict; ValueError with one sentence."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"line {number} of the extra headers needs the form “Name: value”")
        headers[name.strip()] = value.strip()
    return headers


class ModelRef(BaseModel):
    """A model as offered by one account (or pool): what the picker lists and a conversation remembers."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.model}"
