"""Which models an account offers, whether its key works, what a model is, what a proxy key spent.

Listing uses the provider's model-listing endpoint (free on every provider we support), with the
key in a header, never in the URL. Where that list is public (OpenRouter) a key-check endpoint
proves the key instead. Lists are cached on disk so the picker is filled at start-up before any
network answer arrives; `models()` answers from that cache while it is fresh, asks the provider
otherwise, and when the provider cannot be reached falls back to the last list it gave, then to
LiteLLM's bundled model map.

LiteLLM is never imported here: `litellm` is an async callable that hands over the module once the
engine thread has imported it (see litellm_engine.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    DomainError,
    MalformedResponse,
    NoKey,
    PermissionDenied,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.domain.models import ModelInfo
from desktop_app.domain.organizations import organization_from_headers
from desktop_app.domain.providers import ModelListStyle
from desktop_app.domain.text import without_bidi_controls
from desktop_app.domain.urls import server_root
from desktop_app.services.accounts import cloud_lists
from desktop_app.services.accounts.model_info import (
    INFO_FIELDS,
    bundled_models,
    kept_info,
    litellm_version,
    model_info_from,
    ollama_model_info,
    read_model_info,
    write_model_info,
)
from desktop_app.services.errors import (
    TransportWording,
    error_reply,
    request_not_built,
    transport_error,
    unsendable,
)
from desktop_app.services.latest_file import LatestFile
from desktop_app.services.paths import write_atomically

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 10.0
CACHE_TTL_S = 15 * 60.0
NO_SPEND_RECORDS = "This LiteLLM Proxy keeps no spend records (it has no database)."

LiteLLMLoader = Callable[[], Awaitable[ModuleType]]
ModelSource = Literal["cache", "provider", "bundled"]


class CheckStatus(StrEnum):
    OK = "ok"
    INVALID_KEY = "invalid key"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: CheckStatus
    message: str  # one sentence for the window
    models: tuple[str, ...] = ()
    organization_id: str | None = None  # as the provider reported it, for the account to keep


@dataclass(frozen=True, slots=True)
class ModelList:
    """An account's models and where they came from.

    source "cache": the on-disk list (fresh, or stale with `error` saying why it was not renewed);
    "provider": just listed; "bundled": LiteLLM's bundled model map, because the provider could
    not be reached (`error` says why).
    """

    models: tuple[str, ...]
    source: ModelSource
    error: DomainError | None = None
    fetched_at: float | None = None  # epoch seconds of the provider's answer; None for "bundled"

    @property
    def notice(self) -> str | None:
        """One sentence for the window when the list is not the provider's current one."""
        if self.error is None:
            return None
        if self.source == "bundled":
            return "From LiteLLM's bundled list: the provider could not be reached."
        if self.source == "cache":
            return "From the list saved earlier: the provider could not be reached."
        return self.error.message


@dataclass(frozen=True, slots=True)
class KeySpend:
    """What a LiteLLM Proxy virtual key has spent, from `/key/info`."""

    spend: float  # USD; within the current budget window when the key has one
    max_budget: float | None = None  # USD
    models: tuple[str, ...] = ()  # model names the key may call; () means all
    key_alias: str | None = None
    budget_reset_at: str | None = None  # ISO 8601, as the proxy sent it

    @property
    def remaining(self) -> float | None:
        return None if self.max_budget is None else max(0.0, self.max_budget - self.spend)


@dataclass(frozen=True, slots=True)
class _Listing:
    models: tuple[str, ...]
    organization_id: str | None
    fetched_at: float


# --- requests ------------------------------------------------------------------------------------


def _base_headers(account: Account) -> httpx.Headers:
    """The account's extra headers; every caller sets its auth headers on top (case-insensitively)."""
    headers = httpx.Headers(account.request_headers)
    headers["accept"] = "application/json"
    return headers


def _request_for(account: Account, api_key: str | None) -> tuple[str, httpx.Headers]:
    base = account.effective_base_url
    style = account.provider.list_style
    headers = _base_headers(account)
    if style is ModelListStyle.OPENAI:
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return f"{base}/models", headers
    if style is ModelListStyle.ANTHROPIC:
        headers.setdefault("anthropic-version", "2023-06-01")
        if api_key:
            headers["x-api-key"] = api_key
        return f"{base}/v1/models?limit=1000", headers
    if style is ModelListStyle.GEMINI:
        if api_key:
            headers["x-goog-api-key"] = api_key
        return f"{base}/v1beta/models?pageSize=1000", headers
    if style is ModelListStyle.OLLAMA:
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return f"{base}/api/tags", headers
    if style in cloud_lists.STYLES:
        return cloud_lists.list_url(account, api_key, headers), headers
    raise AssertionError(style)


def _azure_deployments_request(account: Account, api_key: str | None) -> tuple[str, httpx.Headers]:
    headers = _base_headers(account)
    if api_key:
        headers["api-key"] = api_key
    return cloud_lists.azure_deployments_url(account), headers


def _bearer_request(account: Account, url: str, api_key: str) -> tuple[str, httpx.Headers]:
    headers = _base_headers(account)
    headers["authorization"] = f"Bearer {api_key}"
    return url, headers


def _server_root(account: Account) -> str:
    """A LiteLLM Proxy's root: its management routes (/key/info) live beside /v1, not under it."""
    return server_root(account.effective_base_url)


def _parse_models(style: ModelListStyle, payload: Any) -> tuple[str, ...]:
    if not isinstance(payload, dict):
        raise TypeError("not a JSON object")
    if style in cloud_lists.STYLES:
        return cloud_lists.parse_models(style, payload)
    if style in (ModelListStyle.OLLAMA, ModelListStyle.GEMINI):
        entries, key = payload["models"], "name"
    else:
        entries, key = payload["data"], "id"
    names = []
    for entry in entries:
        name = entry[key]
        if style is ModelListStyle.GEMINI:
            if "generateContent" not in entry.get("supportedGenerationMethods", ["generateContent"]):
                continue
            name = name.removeprefix("models/")
        if style is ModelListStyle.OLLAMA and "completion" not in (entry.get("capabilities") or ["completion"]):
            continue  # an embedding model cannot chat (older Ollamas list no capabilities)
        names.append(without_bidi_controls(str(name)))
    return tuple(sorted(set(names)))


def _error_body(response: httpx.Response) -> dict[str, Any]:
    return error_reply(response)[0]


def _rejects_key(response: httpx.Response) -> bool:
    """Google answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID, not 401."""
    if response.status_code != 400:
        return False
    details = _error_body(response).get("details")
    return isinstance(details, list) and any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details
    )


def _no_database(response: httpx.Response) -> bool:
    """A LiteLLM Proxy without a database: 500 "Database not connected" on management routes, and
    400 no_db_connection for any key but the master key."""
    error = _error_body(response)
    if error.get("type") == "no_db_connection":
        return True
    return response.status_code == 500 and "Database not connected" in str(error.get("message", ""))


def _is_fresh(entry: dict[str, Any], account: Account, now: float) -> bool:
    fetched_at = entry.get("fetched_at")
    if not isinstance(fetched_at, (int, float)) or entry.get("base_url") != account.effective_base_url:
        return False
    return 0 <= now - fetched_at < CACHE_TTL_S


def _cannot_reach(error: DomainError) -> bool:
    """Errors where an older or bundled list still helps; a rejected key or a wrong URL are not."""
    if isinstance(error, (Unreachable, TimedOut)):
        return True
    return isinstance(error, ServerError) and (error.status is None or error.status == 429 or error.status >= 500)


def _write_models(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data, mode=0o644)
    except OSError:
        log.warning("could not write the model cache", exc_info=True)


# --- the catalog ---------------------------------------------------------------------------------


class ModelCatalog:
    """Lists models per account through one shared httpx client, with an on-disk cache."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        cache_file: Path,
        litellm: LiteLLMLoader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._cache_file = cache_file
        self._cache: dict[str, dict[str, Any]] = {}
        self._litellm = litellm
        self._clock = clock
        # What LiteLLM's map said of each model shown, kept for the LiteLLM version that said it,
        # so that showing a model's details at start-up does not need LiteLLM (~150 MB) loaded.
        self._info_file = cache_file.with_name("model-info.json")
        self._info: dict[str, dict[str, dict[str, Any]]] | None = None  # provider id -> model -> fields
        self._lists_file = LatestFile(functools.partial(_write_models, cache_file), name="catalog:cache")
        self._info_writes = LatestFile(functools.partial(write_model_info, self._info_file), name="catalog:details")
        # What each Ollama server's `/api/show` said, by (base URL, model); renewed with its model list.
        self._shown: dict[tuple[str, str], ModelInfo] = {}

    # --- cache ------------------------------------------------------------------------------

    def load_cache(self) -> None:
        try:
            data = json.loads(self._cache_file.read_text("utf-8"))
            self._cache = {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("models"), list)}
        except (OSError, ValueError, AttributeError):
            self._cache = {}

    def cached_models(self, account_id: str) -> tuple[str, ...]:
        entry = self._cache.get(account_id)
        return tuple(entry["models"]) if entry else ()

    def forget(self, account_id: str) -> None:
        if self._cache.pop(account_id, None) is not None:
            self._write_cache()

    def _remember(
        self, account_id: str, models: tuple[str, ...], base_url: str | None = None, fetched_at: float | None = None
    ) -> None:
        # base_url: a list fetched from another server (the URL was edited since) is never fresh.
        self._cache[account_id] = {
            "models": list(models),
            "fetched_at": self._clock() if fetched_at is None else fetched_at,
            "base_url": base_url,
        }
        self._write_cache()

    def _write_cache(self) -> None:
        self._lists_file.put(json.dumps(self._cache).encode("utf-8"))  # a snapshot of the state now

    async def aclose(self) -> None:
        """Quitting: the lists and model details not yet on disk are written."""
        await self._lists_file.aclose()
        await self._info_writes.aclose()

    # --- network ----------------------------------------------------------------------------

    async def _send(
        self, account: Account, api_key: str | None, build: Callable[[], tuple[str, httpx.Headers]]
    ) -> httpx.Response:
        """Build and send one GET for `account`. A request that cannot be built (a base URL that
        is no address, a header httpx refuses) is the account's sentence, not an exception that
        stops every account's refresh."""
        refusal = unsendable(account, api_key)
        if refusal is not None:
            raise refusal
        try:
            url, headers = build()
            return await self._get(url, headers)
        except (ValueError, OverflowError, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            error = request_not_built(exc, account.label, account.effective_base_url)
            if error is None:
                raise
            raise error from None

    async def _get(self, url: str, headers: httpx.Headers) -> httpx.Response:
        """GET with the catalog's timeout; transport failures become TimedOut / Unreachable."""
        host = httpx.URL(url).netloc.decode()
        try:
            return await self._http.get(url, headers=headers, timeout=CHECK_TIMEOUT_S)
        except httpx.LocalProtocolError:
            raise  # nothing was sent (a header the client refused): see _sendable
        except httpx.HTTPError as exc:
            unreachable = (
                f"Could not connect to {host}.",
                "Check that the server is running and the base URL is right.",
            )
            error = transport_error(
                exc,
                TransportWording(
                    timed_out=(
                        f"{host} did not answer within {CHECK_TIMEOUT_S:.0f} s.",
                        "Check that the server is up, then try again.",
                    ),
                    not_connected=unreachable,
                    other=unreachable,
                ),
                url=url,
            )
            assert error is not None  # every httpx failure has its sentence here
            raise error from None

    @staticmethod
    def _raise_for_status(response: httpx.Response, account: Account, what: str) -> None:
        host = response.url.netloc.decode()
        status = response.status_code
        if status == 401 or _rejects_key(response):
            raise AuthFailed(
                f"{host} rejected the key of account “{account.label}”.", "Paste a valid key and check again."
            )
        if status == 403:
            raise PermissionDenied(
                f"{host} refused access for account “{account.label}”.",
                "Check the key's permissions with the provider.",
            )
        azure_problem = cloud_lists.azure_status_error(response, account)
        if azure_problem is not None:
            raise azure_problem
        if status == 400 and _no_database(response):
            raise AuthFailed(
                f"{host} accepts only its master key (this LiteLLM Proxy has no database).",
                "Use the proxy's master key, or connect a database to the proxy.",
            )
        if status >= 400:
            raise ServerError(
                f"{host} answered {what} with HTTP {status}.", "Check the base URL, or try again later.", status=status
            )

    async def _list(self, account: Account, api_key: str | None) -> _Listing:
        if account.provider.list_style is ModelListStyle.NONE:
            return _Listing((), None, self._clock())
        # Vertex AI and Bedrock sign in first: a token, or SigV4 headers; neither sends the stored secret.
        sent_key, checked_key, signed = await cloud_lists.signed_in(account, api_key)

        def build() -> tuple[str, httpx.Headers]:
            url, headers = _request_for(account, sent_key)
            headers.update(signed)
            return url, headers

        response = await self._send(account, checked_key, build)
        self._raise_for_status(response, account, "the model list")
        try:
            models = _parse_models(account.provider.list_style, response.json())
        except (ValueError, KeyError, TypeError):
            host = response.url.netloc.decode()
            raise MalformedResponse(
                f"{host} sent a model list ModelDesk could not read.",
                "Check that the base URL points at the right kind of server.",
            ) from None
        if account.provider.list_style is ModelListStyle.AZURE:
            models = await self._azure_deployments(account, api_key)
        fetched_at = self._clock()
        self._remember(account.id, models, account.effective_base_url, fetched_at)
        # A model pulled again may have gained or lost capabilities: ask its server anew.
        self._shown = {key: info for key, info in self._shown.items() if key[0] != account.effective_base_url}
        return _Listing(models, organization_from_headers(response.headers, api_key), fetched_at)

    async def _azure_deployments(self, account: Account, api_key: str | None) -> tuple[str, ...]:
        """The deployments typed in the account, plus those the resource lists if it still can."""
        listed: tuple[str, ...] = ()
        response = await self._send(account, api_key, lambda: _azure_deployments_request(account, api_key))
        if response.status_code == 200:
            try:
                listed = cloud_lists.azure_deployment_names(response.json())
            except (ValueError, KeyError, TypeError, AttributeError):
                log.info("the deployments list of %s was unreadable", account.label)
        elif response.status_code != 404:
            self._raise_for_status(response, account, "the deployments list")
        return tuple(sorted({*listed, *account.deployments}))

    async def fetch_models(self, account: Account, api_key: str | None) -> tuple[str, ...]:
        """The account's models from its list endpoint; raises a DomainError on failure."""
        return (await self._list(account, api_key)).models

    async def models(self, account: Account, api_key: str | None, *, refresh: bool = False) -> ModelList:
        """The account's models: the cache while fresh, else the provider, else a fallback. Never raises
        a DomainError: a failure is in `error`, with whatever list could still be offered."""
        entry = self._cache.get(account.id)
        if not refresh and entry is not None and _is_fresh(entry, account, self._clock()):
            return ModelList(tuple(entry["models"]), "cache", None, entry["fetched_at"])
        if account.provider.key_required and not api_key:
            return ModelList(
                (), "provider", NoKey(f"Account “{account.label}” has no key yet.", "Open Accounts and paste its key.")
            )
        try:
            listing = await self._list(account, api_key)
        except DomainError as exc:
            return await self._fallback(account, exc)
        return ModelList(listing.models, "provider", None, listing.fetched_at)

    async def _fallback(self, account: Account, error: DomainError) -> ModelList:
        if not _cannot_reach(error):
            return ModelList((), "provider", error)
        entry = self._cache.get(account.id)
        # The account's own earlier list beats LiteLLM's generic one: it has the account's
        # fine-tunes and leaves out models the key cannot use; for local servers it is all there is.
        if entry is not None and entry.get("models") and entry.get("base_url") == account.effective_base_url:
            return ModelList(tuple(entry["models"]), "cache", error, entry.get("fetched_at"))
        litellm = await self._litellm_with_map(account, "the bundled model list")
        if litellm is not None:
            bundled = bundled_models(litellm, account.provider)
            if bundled:
                return ModelList(bundled, "bundled", error)
        return ModelList((), "provider", error)

    async def _litellm_with_map(self, account: Account, wanted_for: str) -> ModuleType | None:
        """LiteLLM, for its bundled map of `account`'s provider; None when there is no such map or
        LiteLLM could not be loaded (logged, never raised; cancellation aside)."""
        if self._litellm is None or account.provider.model_map_name is None:
            return None
        try:
            return await self._litellm()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("LiteLLM could not be loaded for %s", wanted_for, exc_info=True)
            return None

    async def _check_key(self, account: Account, api_key: str) -> str | None:
        """For providers whose model list is public: prove the key on the key-check endpoint."""
        path = account.provider.key_check_path
        assert path is not None
        response = await self._send(
            account, api_key, lambda: _bearer_request(account, f"{account.effective_base_url}{path}", api_key)
        )
        self._raise_for_status(response, account, "the key check")
        return organization_from_headers(response.headers, api_key)

    async def check(self, account: Account, api_key: str | None) -> CheckResult:
        """Verify an account by listing its models: ok / invalid key / unreachable / timeout."""
        if account.provider.key_required and not api_key:
            return CheckResult(CheckStatus.INVALID_KEY, "This account has no key yet: paste one, then check.")
        organization = None
        try:
            if account.provider.key_check_path and api_key:
                organization = await self._check_key(account, api_key)
            listing = await self._list(account, api_key)
        except (AuthFailed, PermissionDenied):
            return CheckResult(CheckStatus.INVALID_KEY, "Invalid key: the provider rejected it.")
        except TimedOut as exc:
            return CheckResult(CheckStatus.TIMEOUT, f"Timed out: {exc.message}")
        except Unreachable as exc:
            return CheckResult(CheckStatus.UNREACHABLE, f"Unreachable: {exc.message}")
        except DomainError as exc:
            return CheckResult(CheckStatus.ERROR, exc.message)
        if account.provider.list_style is ModelListStyle.NONE:
            return CheckResult(CheckStatus.OK, "OK: the token works.", (), organization)
        count = len(listing.models)
        noun = "model is" if count == 1 else "models are"
        if account.provider.list_style is ModelListStyle.AZURE:
            if not count:
                return CheckResult(
                    CheckStatus.OK, "OK: the key works; add the names of your deployments to chat with them.", ()
                )
            noun = "deployment is" if count == 1 else "deployments are"
        return CheckResult(
            CheckStatus.OK,
            f"OK: the key works and {count} {noun} available.",
            listing.models,
            listing.organization_id or organization,
        )

    # --- model details ----------------------------------------------------------------------

    async def model_info(self, account: Account, model: str, api_key: str | None = None) -> ModelInfo:
        """What LiteLLM's bundled map knows about `model` on `account` (for an Ollama account, what
        its server's `/api/show` says, asked with `api_key`); all None when it knows nothing or
        LiteLLM is unavailable. Never raises (cancellation aside).

        Kept on disk per provider and model for the installed LiteLLM version: asked again (at the
        next start, say), the answer comes from there and LiteLLM is not loaded for it."""
        if account.provider.list_style is ModelListStyle.OLLAMA:
            return await self._ollama_info(account, model, api_key)
        if self._litellm is None or account.provider.model_map_name is None:
            return ModelInfo(model)
        if self._info is None:
            kept = await asyncio.to_thread(read_model_info, self._info_file)
            if self._info is None:  # another call may have read it meanwhile
                self._info = kept
        known = self._info.get(account.provider.id, {}).get(model)
        if known is not None:
            return kept_info(model, known)
        litellm = await self._litellm_with_map(account, "model details")
        if litellm is None:
            return ModelInfo(model)
        # A worker thread: LiteLLM's first lookup in a process is too slow for the GUI loop.
        info = await asyncio.to_thread(model_info_from, litellm, account.provider, model)
        fields = {name: getattr(info, name) for name in INFO_FIELDS}
        self._info.setdefault(account.provider.id, {})[model] = fields
        # Serialised here, so that a later call's details cannot change it while it is written.
        self._info_writes.put(json.dumps({"litellm": litellm_version(), "providers": self._info}).encode())
        return info

    async def _ollama_info(self, account: Account, model: str, api_key: str | None) -> ModelInfo:
        """`/api/show` of an Ollama account's server (LiteLLM's map knows no local model); kept
        until its model list is fetched again. Unknown when the server cannot tell, never raised."""
        key = (account.effective_base_url, model)
        if key in self._shown:
            return self._shown[key]
        if unsendable(account, api_key) is not None:
            return ModelInfo(model)
        headers = _base_headers(account)
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        try:
            response = await self._http.post(
                f"{account.effective_base_url}/api/show",
                json={"model": model},
                headers=headers,
                timeout=CHECK_TIMEOUT_S,
            )
            shown = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.info("could not ask %s what %s can do: %s", account.label, model, type(exc).__name__)
            return ModelInfo(model)
        info = ollama_model_info(model, shown)
        if info.known:
            self._shown[key] = info
        return info

    # --- LiteLLM Proxy spend ----------------------------------------------------------------

    async def key_spend(self, account: Account, api_key: str | None) -> KeySpend:
        """What the account's LiteLLM Proxy key has spent; raises a DomainError when it cannot tell."""
        path = account.provider.spend_path
        if path is None:
            raise BadRequest(
                f"{account.provider.name} does not report spend per key.",
                "Spend can be read for LiteLLM Proxy accounts only.",
            )
        if not api_key:
            raise NoKey(f"Account “{account.label}” has no key yet.", "Open Accounts and paste its key.")
        # The key goes in the header; /key/info?key=... would put it in the proxy's access log.
        response = await self._send(
            account, api_key, lambda: _bearer_request(account, f"{_server_root(account)}{path}", api_key)
        )
        if response.status_code >= 400 and _no_database(response):
            raise ServerError(
                NO_SPEND_RECORDS, "Connect a database to the proxy to track spend per key.", status=response.status_code
            )
        self._raise_for_status(response, account, "the spend request")
        try:
            info = response.json()["info"]
            spend = info.get("spend") or 0.0
            budget = info.get("max_budget")
            models = info.get("models") or []
            if (
                isinstance(spend, bool)
                or not isinstance(spend, (int, float))
                or not (budget is None or (isinstance(budget, (int, float)) and not isinstance(budget, bool)))
                or not isinstance(models, list)
            ):
                raise TypeError("unexpected field types")
            alias, reset = info.get("key_alias"), info.get("budget_reset_at")
            return KeySpend(
                spend=float(spend),
                max_budget=None if budget is None else float(budget),
                models=tuple(str(m) for m in models),
                key_alias=alias if isinstance(alias, str) else None,
                budget_reset_at=reset if isinstance(reset, str) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            host = response.url.netloc.decode()
            raise MalformedResponse(
                f"{host} sent key information ModelDesk could not read.",
                "Check that the account points at a LiteLLM Proxy.",
            ) from None
