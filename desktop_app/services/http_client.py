"""The user's proxy settings, one rule for every HTTP client in the process.

HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY are read as httpx reads them, which is how LiteLLM
and the ollama library read them too, so listing models goes the way chatting does. Loopback always
goes direct: a proxy on another machine cannot reach this machine's local servers. Credentials in
`.netrc` are never sent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

# `import httpx` also imports its command-line tool when click and rich are installed (about 6 MB
# with pygments' lexers); the app never runs it, and httpx goes on without it when it is absent.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


def direct_to_loopback(environ: MutableMapping[str, str] | None = None) -> None:
    """When a proxy is set, add the loopback names to NO_PROXY (and no_proxy, which urllib prefers).

    Call once at start, before any client is built: LiteLLM and the ollama library then reach local
    servers directly too. Without a proxy nothing changes.
    """
    env = os.environ if environ is None else environ
    if not any(env.get(name) or env.get(name.upper()) for name in _PROXY_VARS):
        return
    names = [name for name in ("no_proxy", "NO_PROXY") if name in env] or ["NO_PROXY"]
    for name in names:
        entries = [entry.strip() for entry in env.get(name, "").split(",") if entry.strip()]
        if "*" in entries:
            continue
        added = [host for host in LOOPBACK_HOSTS if host not in entries]
        if added:
            env[name] = ",".join([*entries, *added])


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` that follows the proxy settings and reaches loopback directly."""
    import httpx

    # A mount of None means "no proxy" for that pattern; it outranks the proxies from the
    # environment because a host pattern is more specific than a scheme pattern.
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        f"all://{'[' + host + ']' if ':' in host else host}": None for host in LOOPBACK_HOSTS
    }
    mounts.update(kwargs.pop("mounts", None) or {})
    # trust_env: the proxy variables (and SSL_CERT_FILE/SSL_CERT_DIR for a proxy that re-signs
    # TLS). httpx itself never reads .netrc; auth stays whatever the caller passes.
    return httpx.AsyncClient(trust_env=True, mounts=mounts, **kwargs)
