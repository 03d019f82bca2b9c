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
from urllib.parse import urlsplit

import httpx

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


def _host(url: str) -> str:
    """host[:port] for messages; user info (a password in the URL) never goes into a sentence."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or "the server"


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
    if "Timeout" in names or "APITimeoutError" in names or any(isinstance(c, httpx.TimeoutException) for c in chain):
        return TimedOut(
            f"{host} did not answer in time.",
            "Retry, or raise the request timeout in Settings if the model is slow to start.",
        )
    if any(isinstance(c, httpx.ConnectError) for c in chain) or (
        status is None and any(isinstance(c, ConnectionRefusedError) for c in chain)
    ):
        return Unreachable(
            f"Could not connect to {host}.",
            "Check that the server is running and the account's base URL is right.",
            url=base_url,
        )
    if any(isinstance(c, (httpx.RemoteProtocolError, httpx.ReadError)) for c in chain):
        return Unreachable(
            f"The connection to {host} was cut before the reply finished.",
            "Retry; the partial reply is kept.",
            url=base_url,
        )
    if "RateLimitError" in names or status == 429:
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
            "Pick a chat model; an embedding model only turns text into vectors." if what == "chat"
            else "Pick a model that can do this.",
        )
    if "BadRequestError" in names or status in (400, 422):
        return BadRequest(
            f"{host} refused the request as invalid.",
            "Check the parameters (response format, stop sequences, max tokens) and retry.",
        )
    if status is not None and status >= 500 or names & {"InternalServerError", "ServiceUnavailableError",
                                                         "BadGatewayError"}:
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
