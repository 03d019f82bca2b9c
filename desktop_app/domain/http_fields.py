"""What may go into a base URL or an extra header: the checks made where the user types them.

A value that passes here can be sent by httpx as it is; each refusal is one sentence (without the
final full stop) saying what to change. Header rules follow RFC 9110: a name is a token, a value
is visible ASCII with spaces or tabs inside, never CR, LF or NUL.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_VALUE = re.compile(r"[\x20-\x7e\t]*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")

# Framing and hop-by-hop headers (RFC 9110 7.6.1, RFC 9112 6): the HTTP client sets them for each
# request; a second Transfer-Encoding beside Content-Length makes a request servers must refuse.
FRAMING_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
# Where ModelDesk puts the account's key itself: typed here, it would clash with the key field.
KEY_HEADERS = frozenset({"authorization", "x-api-key"})
# Headers that carry credentials: their values are secrets, kept in the keyring like keys.
_CREDENTIAL_NAMES = frozenset(
    {
        "api-key",
        "proxy-authorization",
        "cookie",
        "x-goog-api-key",
        "x-litellm-api-key",
        "ocp-apim-subscription-key",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
    }
)
_CREDENTIAL_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "auth",
    "cookie",
    "session",
    "credential",
    "signature",
)


def is_credential_header(name: str) -> bool:
    """True for headers whose value is a secret (api-key, Cookie, X-Goog-Api-Key, X-Auth-Token...)."""
    lower = name.strip().lower()
    return lower in _CREDENTIAL_NAMES or any(word in lower for word in _CREDENTIAL_WORDS)


def check_base_url(value: str) -> str:
    """The URL without trailing slashes; ValueError with one sentence when it cannot be sent to."""
    url = value.strip().rstrip("/")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValueError("the base URL must not contain spaces or control characters")
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("the base URL must start with http:// or https://")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        if "Invalid IPv6 URL" in str(exc):  # a bracket opened and never closed, or the reverse
            raise ValueError("an IPv6 address in the base URL needs both brackets, as in http://[::1]:8080") from None
        inside = url.partition("[")[2].partition("]")[0]
        raise ValueError(f"“{inside}” in brackets is not an IPv6 address") from None
    netloc = parts.netloc
    if "@" in netloc:  # user:password@ would put a secret in the settings file, and in logs
        raise ValueError(
            "the base URL must not hold a user name or password: put the key in the key field "
            "(or a credential header), which ModelDesk keeps in the keyring"
        )
    host = parts.hostname or ""
    if not host:
        raise ValueError("the base URL needs a host name, as in http://127.0.0.1:8080")
    if "[" in netloc:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise ValueError(f"“{host}” in brackets is not an IPv6 address") from None
    elif ":" in host or not all(_HOST_LABEL.fullmatch(label) for label in host.rstrip(".").split(".")):
        if not _is_ascii(host):
            raise ValueError("the host name must be in ASCII (write an international name in its xn-- form)")
        raise ValueError(f"“{host}” is not a valid host name")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port of the base URL must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port of the base URL must be a number from 1 to 65535")
    if not _is_ascii(url):
        raise ValueError("the base URL must be in ASCII (percent-encode other characters)")
    return url


def check_header(name: str, value: str) -> tuple[str, str]:
    """The header, trimmed; ValueError with one sentence when it cannot or must not be sent."""
    name, value = name.strip(), value.strip(" \t")
    if _TOKEN.fullmatch(name):
        lower = name.lower()
        if lower in FRAMING_HEADERS:
            raise ValueError(f"the {name} header is set by the HTTP client for each request; remove it")
        if lower in KEY_HEADERS:
            raise ValueError(f"the {name} header is set by ModelDesk (put keys in the key field)")
    return check_header_bytes(name, value)


def check_header_bytes(name: str, value: str) -> tuple[str, str]:
    """Only whether the header can be written on the wire at all (a token name, an ASCII line)."""
    name, value = name.strip(), value.strip(" \t")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"“{name}” is not a valid header name")
    if any(ch in value for ch in "\r\n\0"):
        raise ValueError(f"the value of {name} must be on one line")
    if not _is_ascii(value):
        raise ValueError(
            f"the value of {name} must be plain ASCII: HTTP sends header values as bytes, so "
            f"percent-encode other characters (Café as Caf%C3%A9)"
        )
    if not _VALUE.fullmatch(value):
        raise ValueError(f"the value of {name} must not contain control characters")
    return name, value


def check_key(key: str) -> str:
    """An API key as typed, trimmed; ValueError when it could not be sent in a header."""
    key = key.strip()
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise ValueError("the key must be one line without spaces; paste it again")
    if not _is_ascii(key):
        raise ValueError("the key holds characters other than ASCII, which no provider's keys do; paste it again")
    return key


def _is_ascii(text: str) -> bool:
    return text.isascii()
