"""Which models an account offers, and whether its key works, without spending a token.

Both use the provider's model-listing endpoint (free on every provider we support), with the key in
a header, never in the URL. Lists are cached on disk so the picker is filled at start-up before any
network answer arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import (
    AuthFailed,
    DomainError,
    MalformedResponse,
    PermissionDenied,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.domain.providers import ModelListStyle

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 10.0


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


def _request_for(account: Account, api_key: str | None) -> tuple[str, dict[str, str]]:
    base = account.effective_base_url
    style = account.provider.list_style
    headers: dict[str, str] = {"accept": "application/json"}
    if style is ModelListStyle.OPENAI:
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return f"{base}/models", headers
    if style is ModelListStyle.ANTHROPIC:
        headers["anthropic-version"] = "2023-06-01"
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
    raise AssertionError(style)


def _parse_models(style: ModelListStyle, payload: Any) -> tuple[str, ...]:
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    if style is ModelListStyle.OLLAMA:
        entries, key = payload["models"], "name"
    elif style is ModelListStyle.GEMINI:
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
        names.append(str(name))
    return tuple(sorted(set(names)))


def _rejects_key(response: httpx.Response) -> bool:
    """Google answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID, not 401."""
    if response.status_code != 400:
        return False
    try:
        details = response.json()["error"]["details"]
        return any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details)
    except (ValueError, KeyError, TypeError):
        return False


class ModelCatalog:
    """Lists models per account through one shared httpx client, with an on-disk cache."""

    def __init__(self, *, http: httpx.AsyncClient, cache_file: Path) -> None:
        self._http = http
        self._cache_file = cache_file
        self._cache: dict[str, dict[str, Any]] = {}

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

    def _remember(self, account_id: str, models: tuple[str, ...]) -> None:
        self._cache[account_id] = {"models": list(models), "fetched_at": time.time()}
        self._write_cache()

    def _write_cache(self) -> None:
        # Small file, written rarely; atomic so a crash never leaves half a cache.
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._cache_file.parent, prefix=".models-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._cache, fh)
            os.replace(tmp, self._cache_file)
        except OSError:
            log.warning("could not write the model cache", exc_info=True)
            Path(tmp).unlink(missing_ok=True)

    # --- network ----------------------------------------------------------------------------

    async def fetch_models(self, account: Account, api_key: str | None) -> tuple[str, ...]:
        """The account's models from its list endpoint; raises a DomainError on failure."""
        url, headers = _request_for(account, api_key)
        host = httpx.URL(url).netloc.decode()
        try:
            response = await self._http.get(url, headers=headers, timeout=CHECK_TIMEOUT_S)
        except httpx.TimeoutException:
            raise TimedOut(f"{host} did not answer within {CHECK_TIMEOUT_S:.0f} s.",
                           "Check that the server is up, then try again.") from None
        except httpx.HTTPError:
            raise Unreachable(f"Could not connect to {host}.",
                              "Check that the server is running and the base URL is right.", url=url) from None
        if response.status_code == 401 or _rejects_key(response):
            raise AuthFailed(f"{host} rejected the key of account “{account.label}”.",
                             "Paste a valid key and check again.")
        if response.status_code == 403:
            raise PermissionDenied(f"{host} refused access for account “{account.label}”.",
                                   "Check the key's permissions with the provider.")
        if response.status_code >= 400:
            raise ServerError(f"{host} answered the model list with HTTP {response.status_code}.",
                              "Check the base URL, or try again later.", status=response.status_code)
        try:
            models = _parse_models(account.provider.list_style, response.json())
        except (ValueError, KeyError, TypeError):
            raise MalformedResponse(f"{host} sent a model list ModelDesk could not read.",
                                    "Check that the base URL points at the right kind of server.") from None
        self._remember(account.id, models)
        return models

    async def check(self, account: Account, api_key: str | None) -> CheckResult:
        """Verify an account by listing its models: ok / invalid key / unreachable / timeout."""
        if account.provider.key_required and not api_key:
            return CheckResult(CheckStatus.INVALID_KEY, "This account has no key yet: paste one, then check.")
        try:
            models = await self.fetch_models(account, api_key)
        except (AuthFailed, PermissionDenied):
            return CheckResult(CheckStatus.INVALID_KEY, "Invalid key: the provider rejected it.")
        except TimedOut as exc:
            return CheckResult(CheckStatus.TIMEOUT, f"Timed out: {exc.message}")
        except Unreachable as exc:
            return CheckResult(CheckStatus.UNREACHABLE, f"Unreachable: {exc.message}")
        except DomainError as exc:
            return CheckResult(CheckStatus.ERROR, exc.message)
        except asyncio.CancelledError:
            raise
        count = len(models)
        noun = "model is" if count == 1 else "models are"
        return CheckResult(CheckStatus.OK, f"OK: the key works and {count} {noun} available.", models)
