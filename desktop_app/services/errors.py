"""Map whatever LiteLLM, openai, httpx or a server throws onto the domain's small error set.

LiteLLM wraps most failures as its own exception classes, but a stream cut mid-way or a malformed
chunk often surfaces as a generic APIConnectionError / APIError whose cause chain holds the truth,
so the chain is walked, not just the outer type. Messages are composed here, never copied from the
server, so nothing the request carried (a key) can leak into what the user or a log sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import httpx

from desktop_app.domain.accounts import Account
from desktop_app.domain.cloud_secrets import parse_cloud_secret
from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    ContextTooLong,
    DomainError,
    MalformedResponse,
    ModelNotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.domain.http_fields import check_base_url, check_header_bytes, check_key
from desktop_app.domain.text import without_bidi_controls


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "original_exception", None), current.__cause__, current.__context__])


class Transport(Enum):
    """How a request failed before any HTTP answer (DNS and TLS failures are NOT_CONNECTED in httpx)."""

    TIMED_OUT = "timed out"
    NOT_CONNECTED = "not connected"
    CUT = "cut"  # connected, then the connection broke
    OTHER = "other"  # any other httpx failure


_CUT_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, ConnectionResetError, BrokenPipeError)


def transport_failure(exc: BaseException, *, chain: bool = False) -> Transport | None:
    """What kind of transport failure `exc` is (its cause chain too, with `chain`); None if none."""
    candidates = list(_chain(exc)) if chain else [exc]
    names = {type(c).__name__ for c in candidates}
    if any(isinstance(c, httpx.TimeoutException) for c in candidates) or names & {"Timeout", "APITimeoutError"}:
        return Transport.TIMED_OUT
    if any(
        isinstance(c, httpx.ConnectError)
        or (isinstance(c, ConnectionError) and not isinstance(c, (ConnectionResetError, BrokenPipeError)))
        for c in candidates
    ):
        return Transport.NOT_CONNECTED
    if any(isinstance(c, _CUT_ERRORS) for c in candidates):
        return Transport.CUT
    if any(isinstance(c, httpx.HTTPError) for c in candidates):
        return Transport.OTHER
    return None


Said = tuple[str, str]  # (what happened, what to do)


@dataclass(frozen=True, slots=True)
class TransportWording:
    """The sentences for each transport failure at one server and for one action."""

    timed_out: Said
    not_connected: Said
    cut: Said | None = None  # None: said as not_connected
    other: Said | None = None  # None: not a transport failure for this caller, mapped on by it


def transport_error(
    exc: BaseException, wording: TransportWording, *, url: str, chain: bool = False
) -> DomainError | None:
    """TimedOut or Unreachable(url) for a transport failure, in `wording`; None for anything else."""
    kind = transport_failure(exc, chain=chain)
    if kind is None:
        return None
    if kind is Transport.TIMED_OUT:
        return TimedOut(*wording.timed_out)
    said = {
        Transport.NOT_CONNECTED: wording.not_connected,
        Transport.CUT: wording.cut or wording.not_connected,
        Transport.OTHER: wording.other,
    }[kind]
    return None if said is None else Unreachable(*said, url=url)


def error_reply(response: httpx.Response) -> tuple[dict[str, Any], str]:
    """A server's error answer: its `error` object ({} when there is none) and its message, bidi
    controls removed; the start of the body when it is no JSON."""
    try:
        body = response.json()
    except ValueError:
        return {}, without_bidi_controls(response.text.strip()[:200])
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error, without_bidi_controls(str(error.get("message") or ""))
    return {}, without_bidi_controls(str(error or ""))


def _host(url: str) -> str:
    """host[:port] for messages; user info (a password in the URL) never goes into a sentence."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # "http://[::1": the mapping of an error must never raise one itself
        return "the server"
    return netloc.rpartition("@")[2] or "the server"


# Provider error bodies name their reason ("type" / "code"); a status alone can mislead: a LiteLLM
# Proxy without a database refuses any key but its master key with 400, and a gateway that checks
# the key late reports it inside a 200 stream, which LiteLLM then calls a 500.
_AUTH_REASONS = frozenset(
    {
        "invalid_api_key",
        "authentication_error",
        "auth_error",
        "expired_key",
        "invalid_key",
        "unauthenticated",
        "api_key_invalid",
        "401",
    }
)
_PERMISSION_REASONS = frozenset({"permission_denied", "permission_error", "403"})
_RATE_REASONS = frozenset({"rate_limit_exceeded", "rate_limit_error", "429"})
_NO_DATABASE = "no_db_connection"  # a LiteLLM Proxy without a database: only its master key works


def _reasons(chain: list[BaseException]) -> set[str]:
    """The reason words of the provider's error body, lower-cased, wherever in the chain it is."""
    reasons: set[str] = set()
    for candidate in chain:
        body = getattr(candidate, "body", None)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body = body["error"]
        if not isinstance(body, dict):
            continue
        for field in ("type", "code", "status"):
            value = body.get(field)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                reasons.add(str(value).lower())
        details = body.get("details")
        if isinstance(details, list):
            reasons.update(str(d.get("reason")).lower() for d in details if isinstance(d, dict) and d.get("reason"))
    if any("API_KEY_INVALID" in str(c) for c in chain):  # Google's wrong key: 400 INVALID_ARGUMENT
        reasons.add("api_key_invalid")
    return reasons


def unsendable(account: Account, api_key: str | None) -> BadRequest | None:
    """What Save refuses, found in an account stored before it did: said before anything is sent."""
    try:
        check_base_url(account.effective_base_url)
        for name, value in account.request_headers.items():
            check_header_bytes(name, value)
        if api_key and account.provider.secret_kind:
            parse_cloud_secret(account.provider.secret_kind, api_key)
        elif api_key:
            check_key(api_key)
    except ValueError as exc:
        return BadRequest(
            f"Nothing was sent to account “{account.label}”: {exc}.",
            "Open Accounts, correct it and save the account again.",
        )
    return None


def request_not_built(exc: BaseException, account_label: str, base_url: str = "") -> DomainError | None:
    """The request could not even be built from the account's settings, so nothing was sent.

    LiteLLM reports these as 500s or connection errors; the stdlib and httpx name the truth.
    """
    for candidate in _chain(exc):
        text = str(candidate)
        if (
            isinstance(candidate, (httpx.InvalidURL, httpx.UnsupportedProtocol))
            or (type(candidate) is ValueError and ("URL" in text or text.startswith("Port ")))
            or (isinstance(candidate, OverflowError) and "port" in text)
        ):  # httpx lets port 99999 through
            try:
                check_base_url(base_url)  # the check Save makes says it best, when it can tell
            except ValueError as refusal:
                why = str(refusal)
            else:
                why = (
                    "an IPv6 address in the base URL needs both brackets"
                    if "IPv6" in text
                    else "the port of the base URL must be a number from 1 to 65535"
                    if "port" in text.lower()
                    else "the base URL cannot be read as an address"
                )
            return BadRequest(
                f"Nothing was sent to account “{account_label}”: {why}.", "Open Accounts and correct the base URL."
            )
        if isinstance(candidate, httpx.LocalProtocolError) or (
            type(candidate) is ValueError and ("control character" in text or "Illegal header" in text)
        ):
            return BadRequest(
                f"Nothing was sent to account “{account_label}”: the key or an extra header "
                f"contains a line break or another control character.",
                "Open Accounts, paste the key again and check the extra headers.",
            )
        if isinstance(candidate, UnicodeEncodeError):
            name = text.partition("(header '")[2].partition("'")[0]
            what = f"the extra header {name}" if name else "the key or an extra header"
            return BadRequest(
                f"Nothing was sent to account “{account_label}”: {what} contains characters "
                f"other than ASCII, which HTTP headers cannot carry.",
                "Open Accounts and use plain ASCII there (percent-encode other characters).",
            )
    return None


def _retry_after(exc: BaseException) -> float | None:
    for candidate in _chain(exc):
        headers = getattr(candidate, "litellm_response_headers", None)
        response = getattr(candidate, "response", None)
        for source in (headers, getattr(response, "headers", None)):
            if not source:
                continue
            try:
                value = source.get("retry-after") or source.get("Retry-After")
            except AttributeError:
                continue
            if value is None:
                continue
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


# Ollama refusing a model for a job it cannot do: {"error":"\"nomic-embed-text:latest\" does not support chat"}
_CANNOT = re.compile(r'\\?"([^"\\]{1,200})\\?" does not support ([a-z]{1,20})')


def _capability_refusal(chain: list[BaseException]) -> tuple[str, str] | None:
    """(model, what) when the server said the model cannot do what was asked (Ollama's 400)."""
    for candidate in chain:
        found = _CANNOT.search(str(candidate))
        if found:
            return found.group(1), found.group(2)
    return None


def _status(exc: BaseException) -> int | None:
    for candidate in _chain(exc):
        if type(candidate).__name__ == "APIConnectionError":
            # LiteLLM gives these status_code 500 although no HTTP answer ever came.
            continue
        status = getattr(candidate, "status_code", None)
        if isinstance(status, int) and status > 0:
            return status
    return None


def map_error(exc: BaseException, *, account_label: str, model: str, base_url: str) -> DomainError:
    """One domain error, phrased for the user, for any failure of a chat or list request."""
    if isinstance(exc, DomainError):
        return exc
    host = _host(base_url)
    names = {type(c).__name__ for c in _chain(exc)}
    chain = list(_chain(exc))
    not_built = request_not_built(exc, account_label, base_url)
    if not_built is not None:
        return not_built
    reasons = _reasons(chain)
    if _NO_DATABASE in reasons:
        return AuthFailed(
            f"{host} accepts only its master key (this LiteLLM Proxy has no database), so it rejected "
            f"the key of account “{account_label}”.",
            "Use the proxy's master key in Accounts, or connect a database to the proxy.",
        )
    if reasons & _AUTH_REASONS:
        return AuthFailed(
            f"The provider rejected the key of account “{account_label}”.",
            "Open Accounts, paste a valid key and press Check.",
        )
    if reasons & _PERMISSION_REASONS:
        return PermissionDenied(
            f"Account “{account_label}” is not allowed to use {model}.",
            "Pick another model, or check the account's plan and permissions.",
        )

    if "ContextWindowExceededError" in names:
        return ContextTooLong(
            f"The conversation is longer than {model}'s context window.",
            "Start a new conversation, shorten the system prompt, or pick a model with a larger context.",
        )
    if any(isinstance(c, json.JSONDecodeError) for c in chain) or "JSONDecodeError" in names:
        return MalformedResponse(
            f"{host} sent a reply ModelDesk could not read (malformed data in the stream).",
            "Retry; if it keeps happening, the server or a proxy in between is misbehaving.",
        )
    if any("repeating the same chunk" in str(c) for c in chain):
        # LiteLLM's own guard against a model stuck in a loop (REPEATED_STREAMING_CHUNK_LIMIT).
        return MalformedResponse(
            f"{model} kept sending the same text over and over, so the reply was cut off.",
            "Retry, or lower the temperature / set a max tokens limit.",
        )
    status = _status(exc)
    kind = transport_failure(exc, chain=True)
    # A server's answer (a status) beats a refused connection further down the chain; httpx's own doesn't.
    if kind is not Transport.NOT_CONNECTED or status is None or any(isinstance(c, httpx.ConnectError) for c in chain):
        transport = transport_error(
            exc,
            TransportWording(
                timed_out=(
                    f"{host} did not answer in time.",
                    "Retry, or raise the request timeout in Settings if the model is slow to start.",
                ),
                not_connected=(
                    f"Could not connect to {host}.",
                    "Check that the server is running and the account's base URL is right.",
                ),
                cut=(
                    f"The connection to {host} was cut before the reply finished.",
                    "Retry; the partial reply is kept.",
                ),
            ),
            url=base_url,
            chain=True,
        )
        if transport is not None:
            return transport
    if "RateLimitError" in names or status == 429 or reasons & _RATE_REASONS:
        retry_after = _retry_after(exc)
        wait = f" Try again in {retry_after:.0f} s." if retry_after else ""
        return RateLimited(
            f"Account “{account_label}” is rate-limited by the provider.{wait}",
            "Wait and retry, or switch to another account.",
            retry_after=retry_after,
        )
    if "AuthenticationError" in names or status == 401:
        return AuthFailed(
            f"The provider rejected the key of account “{account_label}”.",
            "Open Accounts, paste a valid key and press Check.",
        )
    if "PermissionDeniedError" in names or status == 403:
        return PermissionDenied(
            f"Account “{account_label}” is not allowed to use {model}.",
            "Pick another model, or check the account's plan and permissions.",
        )
    if "NotFoundError" in names or status == 404:
        return ModelNotFound(
            f"Model {model} was not found on account “{account_label}”.",
            "Refresh the model list and pick a model the account offers.",
        )
    if (refusal := _capability_refusal(chain)) is not None and status in (400, None):
        # The provider's own reason beats "invalid request": an embedding model cannot chat.
        name, what = refusal
        return BadRequest(
            f"{host} says {name} does not support {what}.",
            "Pick a chat model; an embedding model only turns text into vectors."
            if what == "chat"
            else "Pick a model that can do this.",
        )
    if "BadRequestError" in names or status in (400, 422):
        return BadRequest(
            f"{host} refused the request as invalid.",
            "Check the parameters (response format, stop sequences, max tokens) and retry.",
        )
    if (status is not None and status >= 500) or names & {
        "InternalServerError",
        "ServiceUnavailableError",
        "BadGatewayError",
    }:
        return ServerError(
            f"{host} had an internal error{f' (HTTP {status})' if status else ''}.",
            "Retry in a moment; if it persists, check the server's logs or status page.",
            status=status,
        )
    if "APIConnectionError" in names:
        return Unreachable(
            f"The connection to {host} failed.",
            "Check that the server is running and reachable, then retry.",
            url=base_url,
        )
    return ServerError(
        f"The request to {host} failed unexpectedly ({type(exc).__name__}).",
        "Retry; if it keeps happening, copy the diagnostics and report it.",
        status=status,
    )
