"""The providers' organisation admin APIs: usage and cost reports, and the organisation's API keys.

Anthropic Admin API (`x-api-key: sk-ant-admin…` + `anthropic-version`): `/v1/organizations/
usage_report/messages`, `/v1/organizations/cost_report`, `/v1/organizations/api_keys` (list, and
POST `{status}` to update one). OpenAI Administration API (`Authorization: Bearer sk-admin-…`):
`/organization/usage/completions`, `/organization/costs`, `/organization/projects` and each
project's `/api_keys`. Reports are pages of time buckets followed with `next_page`; key lists
are followed with `after_id` / `after`.

Every failure is a DomainError in one sentence composed here: nothing the server said, and never
the key, reaches the message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx

from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    DomainError,
    MalformedResponse,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from desktop_app.domain.org_usage import ADMIN_KEY_PREFIXES, OrgKey, ProviderCost, ProviderUsage
from desktop_app.services.errors import TransportWording, transport_error

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
MAX_PAGES = 50  # a runaway cursor stops here rather than looping for ever
_Params = list[tuple[str, str | int | float | bool | None]]


def _utc_day(value: Any) -> str:
    """An ISO date from an RFC 3339 string or unix seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).date().isoformat()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC).date().isoformat()


class AdminClient:
    """One organisation, reached with its admin key; `provider` names it in sentences."""

    provider = ""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, admin_key: str, label: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._key = admin_key
        self._label = label

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def _call(self, method: str, path: str, params: _Params | None = None, body: Any = None) -> Any:
        url = self._base + path
        try:
            response = await self._http.request(method, url, params=params, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            wording = TransportWording(
                timed_out=(
                    f"The {self.provider} admin API did not answer in time for “{self._label}”.",
                    "Try again in a moment.",
                ),
                not_connected=(
                    f"The {self.provider} admin API could not be reached for “{self._label}”.",
                    "Check the network connection and the account's base URL.",
                ),
                other=(
                    f"The {self.provider} admin API could not be reached for “{self._label}”.",
                    "Check the network connection and the account's base URL.",
                ),
            )
            raise (transport_error(exc, wording, url=self._base) or _unknown(self.provider, self._label)) from None
        if response.status_code >= 400:
            raise self._refusal(response)
        try:
            return response.json()
        except ValueError:
            raise MalformedResponse(
                f"The {self.provider} admin API sent an answer ModelDesk cannot read for “{self._label}”.",
                "Check the account's base URL.",
            ) from None

    def _refusal(self, response: httpx.Response) -> DomainError:
        status, label, provider = response.status_code, self._label, self.provider
        prefix = ADMIN_KEY_PREFIXES.get(self.provider.lower(), "")
        if status in (401, 403) and not self._key.startswith(prefix):
            return PermissionDenied(
                f"{provider} refused the key of “{label}”: usage, costs and keys need an organisation admin key "
                f"({prefix}…), not an ordinary API key.",
                "Create an admin key in the provider's console and enter it in Accounts.",
            )
        if status == 401:
            return AuthFailed(
                f"{provider} did not accept the admin key of “{label}”.",
                "Check the admin key in Accounts, or create a new one in the provider's console.",
            )
        if status == 403:
            return PermissionDenied(
                f"{provider} refused this request for “{label}”: the admin key lacks the permission it needs.",
                "Use an admin key of an organisation owner, with read access to usage and keys.",
            )
        if status == 429:
            retry = response.headers.get("retry-after")
            try:
                after = float(retry) if retry is not None else None
            except ValueError:
                after = None
            return RateLimited(f"The {provider} admin API is rate-limiting “{label}”.", "Try again in a minute.", after)
        if status in (400, 404, 422):
            return BadRequest(
                f"The {provider} admin API refused the request for “{label}” (HTTP {status}).",
                "Check the account's base URL; a proxy in front of the provider may not offer the admin API.",
            )
        return ServerError(
            f"The {provider} admin API failed for “{label}” (HTTP {status}).", "Try again later.", status
        )

    async def _pages(self, path: str, params: _Params) -> list[dict[str, Any]]:
        """The buckets of every page of a report, following `next_page`."""
        buckets: list[dict[str, Any]] = []
        page: str | None = None
        for _ in range(MAX_PAGES):
            body = await self._call("GET", path, [*params, *([("page", page)] if page else [])])
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise self._malformed()
            buckets.extend(bucket for bucket in data if isinstance(bucket, dict))
            page = body.get("next_page") if body.get("has_more") else None
            if not page:
                break
        return buckets

    def _malformed(self) -> MalformedResponse:
        return MalformedResponse(
            f"The {self.provider} admin API sent a report ModelDesk cannot read for “{self._label}”.",
            "Check the account's base URL.",
        )

    # --- what both providers offer ------------------------------------------------------------

    async def check(self) -> None:
        """One cheap call that needs the admin key (the first API key); raises a DomainError."""
        raise NotImplementedError

    async def usage(self, start: date, end: date) -> list[ProviderUsage]:
        """Tokens per UTC day, API key, workspace/project and model, from `start` to `end` inclusive."""
        raise NotImplementedError

    async def costs(self, start: date, end: date) -> list[ProviderCost]:
        raise NotImplementedError

    async def keys(self) -> list[OrgKey]:
        raise NotImplementedError

    async def disable_key(self, key: OrgKey) -> OrgKey:
        raise NotImplementedError


def _unknown(provider: str, label: str) -> DomainError:
    return ServerError(f"The {provider} admin API failed for “{label}”.", "Try again later.")


def _rfc3339(day: date) -> str:
    return datetime.combine(day, time(), UTC).isoformat().replace("+00:00", "Z")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


class AnthropicAdmin(AdminClient):
    provider = "Anthropic"

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._key, "anthropic-version": ANTHROPIC_VERSION}

    async def check(self) -> None:
        await self._call("GET", "/v1/organizations/api_keys", [("limit", 1)])

    async def usage(self, start: date, end: date) -> list[ProviderUsage]:
        params: _Params = [
            ("starting_at", _rfc3339(start)),
            ("ending_at", _rfc3339(end + timedelta(days=1))),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by[]", "api_key_id"),
            ("group_by[]", "workspace_id"),
            ("group_by[]", "model"),
        ]
        rows = []
        try:
            for bucket in await self._pages("/v1/organizations/usage_report/messages", params):
                day = _utc_day(bucket["starting_at"])
                for result in bucket.get("results") or ():
                    creation = result.get("cache_creation") or {}
                    input_tokens = (
                        _int(result.get("uncached_input_tokens"))
                        + _int(result.get("cache_read_input_tokens"))
                        + _int(creation.get("ephemeral_5m_input_tokens"))
                        + _int(creation.get("ephemeral_1h_input_tokens"))
                    )
                    rows.append(
                        ProviderUsage(
                            day=day,
                            key_id=result.get("api_key_id") or "",
                            scope_id=result.get("workspace_id") or "",
                            model=result.get("model") or "",
                            input_tokens=input_tokens,
                            output_tokens=_int(result.get("output_tokens")),
                        )
                    )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._malformed() from None
        return rows

    async def costs(self, start: date, end: date) -> list[ProviderCost]:
        params: _Params = [
            ("starting_at", _rfc3339(start)),
            ("ending_at", _rfc3339(end + timedelta(days=1))),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by[]", "workspace_id"),
            ("group_by[]", "description"),
        ]
        rows = []
        try:
            for bucket in await self._pages("/v1/organizations/cost_report", params):
                day = _utc_day(bucket["starting_at"])
                for result in bucket.get("results") or ():
                    # A decimal string in the lowest currency unit: "123.45" USD is $1.2345.
                    amount = float(result["amount"]) / 100
                    rows.append(
                        ProviderCost(day, result.get("workspace_id") or "", result.get("description") or "", amount)
                    )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._malformed() from None
        return rows

    async def keys(self) -> list[OrgKey]:
        keys: list[OrgKey] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            params: _Params = [("limit", 100), *([("after_id", after)] if after else [])]
            body = await self._call("GET", "/v1/organizations/api_keys", params)
            try:
                keys.extend(self._key_of(item) for item in body["data"])
                after = body.get("last_id") if body.get("has_more") else None
            except (KeyError, TypeError, ValueError, AttributeError):
                raise self._malformed() from None
            if not after:
                break
        return keys

    def _key_of(self, item: Mapping[str, Any]) -> OrgKey:
        return OrgKey(
            provider_id="anthropic",
            id=str(item["id"]),
            name=str(item.get("name") or ""),
            scope_id=str(item.get("workspace_id") or ""),
            status=str(item.get("status") or ""),
            created=_utc_day(item["created_at"]),
            hint=str(item.get("partial_key_hint") or ""),
        )

    async def disable_key(self, key: OrgKey) -> OrgKey:
        """Set the key's status to inactive: requests with it are refused until it is activated again."""
        body = await self._call("POST", f"/v1/organizations/api_keys/{key.id}", body={"status": "inactive"})
        try:
            return self._key_of(body)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._malformed() from None


class OpenAIAdmin(AdminClient):
    """Keys are listed per project; the API can delete a project key but not switch it off."""

    provider = "OpenAI"

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}"}

    async def check(self) -> None:
        await self._call("GET", "/organization/projects", [("limit", 1)])

    async def usage(self, start: date, end: date) -> list[ProviderUsage]:
        params: _Params = [
            ("start_time", _unix(start)),
            ("end_time", _unix(end + timedelta(days=1))),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by", "project_id"),
            ("group_by", "api_key_id"),
            ("group_by", "model"),
        ]
        rows = []
        try:
            for bucket in await self._pages("/organization/usage/completions", params):
                day = _utc_day(bucket["start_time"])
                for result in bucket.get("results") or ():
                    rows.append(
                        ProviderUsage(
                            day=day,
                            key_id=result.get("api_key_id") or "",
                            scope_id=result.get("project_id") or "",
                            model=result.get("model") or "",
                            input_tokens=_int(result.get("input_tokens")),
                            output_tokens=_int(result.get("output_tokens")),
                            requests=_int(result.get("num_model_requests")),
                        )
                    )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._malformed() from None
        return rows

    async def costs(self, start: date, end: date) -> list[ProviderCost]:
        params: _Params = [
            ("start_time", _unix(start)),
            ("end_time", _unix(end + timedelta(days=1))),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by", "project_id"),
            ("group_by", "line_item"),
        ]
        rows = []
        try:
            for bucket in await self._pages("/organization/costs", params):
                day = _utc_day(bucket["start_time"])
                for result in bucket.get("results") or ():
                    amount = result.get("amount") or {}
                    rows.append(
                        ProviderCost(
                            day,
                            result.get("project_id") or "",
                            result.get("line_item") or "",
                            float(amount.get("value") or 0.0),
                        )
                    )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._malformed() from None
        return rows

    async def _list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            body = await self._call("GET", path, [("limit", 100), *([("after", after)] if after else [])])
            try:
                items.extend(body["data"])
                after = body.get("last_id") if body.get("has_more") else None
            except (KeyError, TypeError, AttributeError):
                raise self._malformed() from None
            if not after:
                break
        return items

    async def keys(self) -> list[OrgKey]:
        keys = []
        for project in await self._list("/organization/projects"):
            project_id = str(project.get("id") or "")
            for item in await self._list(f"/organization/projects/{project_id}/api_keys"):
                try:
                    keys.append(
                        OrgKey(
                            provider_id="openai",
                            id=str(item["id"]),
                            name=str(item.get("name") or ""),
                            scope_id=project_id,
                            status="active",  # a listed project key works; a deleted one is gone
                            created=_utc_day(item["created_at"]),
                            hint=str(item.get("redacted_value") or ""),
                        )
                    )
                except (KeyError, TypeError, ValueError):
                    raise self._malformed() from None
        return keys

    async def disable_key(self, key: OrgKey) -> OrgKey:
        raise BadRequest(
            "OpenAI's API cannot switch a key off, only delete it for good.",
            "Delete or restrict the key in the OpenAI dashboard if it must stop working.",
        )


def _unix(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp())


def admin_client(
    provider_id: str, http: httpx.AsyncClient, *, base_url: str, admin_key: str, label: str
) -> AdminClient:
    cls = {"anthropic": AnthropicAdmin, "openai": OpenAIAdmin}[provider_id]
    return cls(http, base_url=base_url, admin_key=admin_key, label=label)
