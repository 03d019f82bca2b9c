"""Model listing (which is also Check) for the cloud providers that are more than a key: Azure
OpenAI's resource models and deployments, Vertex AI's Anthropic publisher models (with a service
account's token) and Bedrock's foundation models (SigV4-signed). The catalog sends the requests.
"""

from __future__ import annotations

from typing import Any

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.domain.errors import BadRequest, DomainError, NoKey
from desktop_app.domain.providers import ModelListStyle
from desktop_app.domain.text import without_bidi_controls
from desktop_app.services.accounts.cloud_auth import aws_signed_headers, google_access_token
from desktop_app.services.errors import error_reply, unsendable

STYLES = frozenset({ModelListStyle.AZURE, ModelListStyle.VERTEX, ModelListStyle.BEDROCK})
# Deployments - List of the 2022-12-01 data plane: retired on newer resources (they answer 404), so a
# bonus; the deployments typed in the account are offered either way.
AZURE_DEPLOYMENTS_API_VERSION = "2022-12-01"


def list_url(account: Account, key_or_token: str | None, headers: httpx.Headers) -> str:
    """The listing URL; sets the auth header where the provider takes one (Bedrock's are signed apart)."""
    style = account.provider.list_style
    base = account.effective_base_url
    if style is ModelListStyle.VERTEX:  # the service account's access token
        if key_or_token:
            headers["authorization"] = f"Bearer {key_or_token}"
        return f"{base}/v1beta1/publishers/anthropic/models?pageSize=100"
    if style is ModelListStyle.BEDROCK:
        return bedrock_models_url(account)
    if key_or_token:  # Azure: Models - List, which needs the key and a valid api-version
        headers["api-key"] = key_or_token
    return f"{base}/openai/models?api-version={account.azure_api_version}"


def bedrock_models_url(account: Account) -> str:
    """ListFoundationModels is on the control plane (bedrock.REGION), not the runtime; an overridden
    base URL (a gateway, the test twin) serves both."""
    base = account.base_url or f"https://bedrock.{account.aws_region}.amazonaws.com"
    return f"{base.rstrip('/')}/foundation-models?byOutputModality=TEXT"


def azure_deployments_url(account: Account) -> str:
    return f"{account.effective_base_url}/openai/deployments?api-version={AZURE_DEPLOYMENTS_API_VERSION}"


def azure_deployment_names(payload: Any) -> tuple[str, ...]:
    entries = payload["data"]
    return tuple(without_bidi_controls(str(e["id"])) for e in entries if e.get("status", "succeeded") == "succeeded")


def parse_models(style: ModelListStyle, payload: dict[str, Any]) -> tuple[str, ...]:
    if style is ModelListStyle.VERTEX:  # publishers/anthropic/models/claude-sonnet-4-5 + versionId 20250929
        found = []
        for entry in payload.get("publisherModels") or []:
            model_id = str(entry["name"]).rsplit("/", 1)[-1]
            version = entry.get("versionId")
            found.append(without_bidi_controls(f"{model_id}@{version}" if version else model_id))
        return tuple(sorted(set(found)))
    if style is ModelListStyle.BEDROCK:
        return tuple(
            sorted(
                {
                    without_bidi_controls(str(entry["modelId"]))
                    for entry in payload["modelSummaries"]
                    if entry.get("responseStreamingSupported", True)
                    and "TEXT" in entry.get("outputModalities", ["TEXT"])
                }
            )
        )
    # Azure: the resource's models prove the key; its deployments are what one chats with.
    if not isinstance(payload.get("data"), list):
        raise TypeError("no data list")
    return ()


def azure_status_error(response: httpx.Response, account: Account) -> DomainError | None:
    """Azure's 400/404 for an unsupported api-version or a wrong endpoint, in one sentence."""
    if account.provider.list_style is not ModelListStyle.AZURE or response.status_code not in (400, 404):
        return None
    host = response.url.netloc.decode()
    if "API version" in str(error_reply(response)[0].get("message", "")):
        return BadRequest(
            f"{host} does not support API version {account.azure_api_version}.",
            "Set an API version the resource supports (2024-10-21, say).",
        )
    if response.status_code == 404:
        return BadRequest(
            f"{host} has no Azure OpenAI API at this address.",
            "Use the resource's endpoint, https://NAME.openai.azure.com.",
        )
    return None


async def signed_in(account: Account, api_key: str | None) -> tuple[str | None, str | None, dict[str, str]]:
    """(what goes in the listing's auth header, the key `unsendable` checks, SigV4 headers): the key
    itself for most providers; a Vertex AI service account's access token; Bedrock's signed headers."""
    style = account.provider.list_style
    if style not in (ModelListStyle.VERTEX, ModelListStyle.BEDROCK):
        return api_key, api_key, {}
    if style is ModelListStyle.BEDROCK and not api_key and not account.aws_profile:
        raise NoKey(
            f"Account “{account.label}” has neither AWS keys nor an AWS profile.",
            "Type its access key id and secret, or name a profile.",
        )
    if not api_key and style is ModelListStyle.VERTEX:
        return None, None, {}
    refusal = unsendable(account, api_key)  # the stored secret, before it is used to sign in
    if refusal is not None:
        raise refusal
    if style is ModelListStyle.VERTEX:
        assert api_key is not None
        return await google_access_token(account.provider, api_key), None, {}
    region, url = account.aws_region, bedrock_models_url(account)
    return None, None, await aws_signed_headers(account.provider, api_key, account.aws_profile, region, url)
