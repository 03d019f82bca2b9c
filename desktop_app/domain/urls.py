"""Server addresses: the one normaliser and the one "same server?" comparison.

A server bound to 0.0.0.0 (or ::) answers on this machine's loopback addresses, and `localhost`,
127.0.0.1 and ::1 all reach this machine, so all of them name one local server when the port matches.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Addresses that reach (or, for a bind, listen on) this machine's loopback interface.
LOOPBACK_HOSTS = frozenset({"localhost", "localhost.", "127.0.0.1", "::1", "0.0.0.0", "::"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def with_scheme(url: str) -> str:
    """`url` stripped, with http:// in front when it names no scheme ("localhost:8080")."""
    url = url.strip()
    return url if "://" in url else f"http://{url}"


def server_root(url: str) -> str:
    """The root every endpoint of a server hangs off: "localhost:8080/v1/" -> "http://localhost:8080"."""
    return with_scheme(url).rstrip("/").removesuffix("/v1").rstrip("/")


def is_loopback(host: str) -> bool:
    """True for a host name or address of this machine's loopback (a 0.0.0.0 bind included)."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS


def _identity(url: str) -> tuple[str, str, int | None, str] | str:
    """(scheme, host, port, path) of a server; the root text itself when it is no readable URL."""
    root = server_root(url)
    try:
        parts = urlsplit(root)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # "http://[::1", "http://host:port": compared as text, never raised
        return root
    host = (parts.hostname or "").lower()
    return scheme, "loopback" if is_loopback(host) else host, port, parts.path


def same_server(a: str, b: str) -> bool:
    """Whether two addresses name one server: scheme, host and port (default ports filled in),
    trailing slashes and a trailing /v1 ignored, loopback names and 0.0.0.0 binds alike."""
    return _identity(a) == _identity(b)
