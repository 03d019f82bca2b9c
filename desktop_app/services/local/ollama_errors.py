"""Ollama's failures said as domain errors: the client's, httpx's, and its registry downloads'."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pydantic

from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    DomainError,
    MalformedResponse,
    ModelNotFound,
    ServerError,
    Unreachable,
)
from desktop_app.domain.ollama import DiskFull, OllamaHost
from desktop_app.domain.text import without_bidi_controls
from desktop_app.services.errors import TransportWording, transport_error

if TYPE_CHECKING:
    import ollama

__all__ = ["auth_failed", "is_transient", "map_error", "unreachable"]

# Mid-stream errors Ollama reports when its own download from the registry broke off.
_TRANSIENT_MARKERS = (
    "max retries exceeded",
    "connection reset",
    "unexpected eof",
    "timeout",
    "timed out",
    "connection refused",
    "tls handshake",
    "broken pipe",
    "service unavailable",
    "bad gateway",
    "temporarily",
)


# How Go words the ways a download from the registry can fail (net, crypto/tls, x509), by kind.
_DNS_MARKERS = ("no such host", "server misbehaving", "temporary failure in name resolution")
_OFFLINE_MARKERS = (
    "network is unreachable",
    "no route to host",
    "dial tcp",
    "connection refused",
    "i/o timeout",
    "handshake timeout",
)
_TLS_MARKERS = ("x509:", "certificate", "tls: failed", "tls: bad")  # a refused certificate, not a timeout
_REGISTRY_HOST = re.compile(r"(?:lookup |https?://)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def _ollama() -> Any:
    """The official client, imported on first use (as in ollama.py): mapping an error never loads it early."""
    import ollama

    return ollama


def auth_failed(host: OllamaHost) -> AuthFailed:
    return AuthFailed(
        f"Ollama at {host.address} refused the request: the key is missing or wrong.",
        "Set the right key for this host in Accounts.",
    )


def unreachable(host: OllamaHost) -> Unreachable:
    action = (
        "Start it with `ollama serve` or check the address."
        if host.is_local
        else "Check that the machine is on, Ollama runs there and listens on the network "
        "(OLLAMA_HOST=0.0.0.0), and the address is right."
    )
    return Unreachable(f"Could not reach Ollama at {host.address}.", action, url=host.url)


def map_error(host: OllamaHost, exc: BaseException, *, model: str = "", pulling: bool = False) -> DomainError:
    """One domain error for anything the client or httpx raised."""
    address = host.address
    down = unreachable(host)
    transport = transport_error(
        exc,
        TransportWording(
            timed_out=(
                f"Ollama at {address} went quiet during the pull of {model}.",
                "It is retried automatically.",
            )
            if pulling
            else (
                f"Ollama at {address} did not answer in time.",
                "Try again; a large model can take a while to load.",
            ),
            not_connected=(down.message, down.action),
            cut=(
                f"The connection to Ollama at {address} was lost during "
                f"{f'the pull of {model}' if pulling else 'the request'}.",
                "It is retried automatically; check that Ollama is still running."
                if pulling
                else "Try again; check that Ollama is still running.",
            ),
        ),
        url=host.url,
    )
    if transport is not None:
        return transport
    if isinstance(exc, (pydantic.ValidationError, ValueError)) and not isinstance(exc, _ollama().ResponseError):
        return MalformedResponse(
            f"Ollama at {address} sent a reply ModelDesk could not read.",
            "Check that the address points at Ollama, then try again.",
        )
    if isinstance(exc, _ollama().ResponseError):
        return _map_response(host, exc, model=model, pulling=pulling)
    return ServerError(
        f"The request to Ollama at {address} failed ({type(exc).__name__}).",
        "Try again; if it keeps happening, copy the diagnostics and report it.",
    )


def _map_response(host: OllamaHost, exc: ollama.ResponseError, *, model: str, pulling: bool) -> DomainError:
    address, text, status = host.address, without_bidi_controls(str(exc.error or "")), exc.status_code
    lowered = text.lower()
    if "no space left on device" in lowered:
        return DiskFull(
            f"The disk holding Ollama's models is full, so {model} could not be pulled.",
            "Free some space or delete models you no longer use, then resume the pull.",
        )
    if "does not support" in lowered and status == 400:
        # Ollama's own reason ("\"x\" does not support chat") is the best sentence there is.
        return BadRequest(
            f"Ollama at {address} says {text.strip().rstrip('.')}.",
            "Pick a model that can do this; an embedding model only turns text into vectors."
            if "embed" in lowered or "support chat" in lowered or "support generate" in lowered
            else "Pick a model that can do this.",
        )
    if pulling and (registry := _registry_failure(address, lowered, model)) is not None:
        return registry
    if "invalid model name" in lowered or (status == 400 and pulling):
        return BadRequest(
            f"“{model}” is not a valid model name.",
            "Names look like llama3.2, qwen2.5:0.5b or namespace/model:tag.",
        )
    if pulling and ("file does not exist" in lowered or ("manifest" in lowered and "not found" in lowered)):
        return ModelNotFound(
            f"Ollama's library has no model named {model}.", "Check the spelling and tag on ollama.com/library."
        )
    if status in (401, 403) or "unauthorized" in lowered:
        return auth_failed(host)
    if status == 404:
        return ModelNotFound(
            f"Ollama at {address} has no model named {model}.",
            "Refresh the list of installed models, or pull it first.",
        )
    if status == 400:
        return BadRequest(f"Ollama at {address} refused the request as invalid.", "Check the model name and try again.")
    if status >= 500 or any(marker in lowered for marker in _TRANSIENT_MARKERS):
        detail = f" (HTTP {status})" if status > 0 else ""
        return ServerError(
            f"Ollama at {address} had a problem{detail} while {'pulling ' + model if pulling else 'answering'}.",
            "It is retried automatically." if pulling else "Try again in a moment.",
            status=status if status > 0 else None,
        )
    shown = text if len(text) <= 200 else text[:199] + "…"
    return ServerError(
        f"Ollama at {address} reported: {shown}",
        "Try again; if it keeps happening, check Ollama's log.",
        status=status if status > 0 else None,
    )


def _registry_failure(address: str, lowered: str, model: str) -> DomainError | None:
    """Ollama's own download from its registry failed: offline, DNS, TLS, or a damaged blob."""
    found = _REGISTRY_HOST.search(lowered)
    host = found.group(1) if found else ""  # the url of these errors: the registry's, never Ollama's
    registry = host or "its registry"
    then = "then resume the pull."
    if "digest mismatch" in lowered:
        return ServerError(
            f"Part of {model} arrived damaged (its sha256 digest did not match), so "
            f"Ollama at {address} threw that part away.",
            "Retry the pull: that part is downloaded again.",
        )
    if any(marker in lowered for marker in _DNS_MARKERS):
        return Unreachable(
            f"Ollama at {address} could not look up {registry}: the machine it runs on seems to be offline.",
            f"Check that machine's network and DNS, {then}",
            url=registry,
        )
    if any(marker in lowered for marker in _TLS_MARKERS):
        return Unreachable(
            f"Ollama at {address} could not make a secure connection to {registry} (the certificate was not accepted).",
            f"Check the clock of the machine Ollama runs on and any proxy that inspects HTTPS, {then}",
            url=host,
        )
    if any(marker in lowered for marker in _OFFLINE_MARKERS):
        return Unreachable(
            f"Ollama at {address} could not reach {registry}.",
            f"Check the network of the machine Ollama runs on, {then}",
            url=host,
        )
    return None


def is_transient(exc: BaseException, error: DomainError, attempt: int) -> bool:
    """Whether trying the pull again may help."""
    if isinstance(error, (DiskFull, ModelNotFound, BadRequest, AuthFailed, MalformedResponse)):
        return False
    if isinstance(exc, (httpx.ConnectError, ConnectionRefusedError)) or (type(exc) is ConnectionError):
        # Nothing listens: on the first try that is "Ollama is not running"; later, a restart.
        return attempt > 1
    if isinstance(exc, _ollama().ResponseError):
        status = exc.status_code
        lowered = str(exc.error or "").lower()
        return status >= 500 or (status == -1 and any(m in lowered for m in _TRANSIENT_MARKERS))
    return isinstance(exc, (httpx.TransportError, OSError))
