"""The request that produced a reply, as sent: stored with the reply so it can be shown as code.

It holds what was handed to LiteLLM after unsupported parameters were dropped, never the key, the
value of a credential header (only its name) or the password of a URL's user info.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FORMAT_VERSION = 1


def without_url_password(url: str) -> tuple[str, bool]:
    """`url` without the password of its user info (a credential), and whether it had one."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, False
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}@{host}")), True


@dataclass(frozen=True, slots=True)
class SentRequest:
    account_id: str
    provider_id: str
    base_url: str  # the account's endpoint (the provider's default when it has none of its own)
    api_base: str | None  # what LiteLLM was given: None lets it use the provider's default
    litellm_model: str  # "<litellm prefix>/<model>"
    model: str
    messages: tuple[dict[str, str], ...]  # as sent, the system prompt first
    params: dict[str, Any] = field(default_factory=dict)  # every parameter sent, after dropping
    headers: dict[str, str] = field(default_factory=dict)  # the account's extra headers (no credentials)
    secret_headers: tuple[str, ...] = ()  # names of credential headers sent (values never kept)
    key_sent: bool = True  # False: a placeholder went instead of a key (a local server without one)
    stream_options: dict[str, Any] = field(default_factory=dict)
    url_password: bool = False  # the URLs had a password after their user name, left out here

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "account_id": self.account_id,
            "provider_id": self.provider_id,
            "base_url": self.base_url,
            "api_base": self.api_base,
            "litellm_model": self.litellm_model,
            "model": self.model,
            "messages": [dict(m) for m in self.messages],
            "params": dict(self.params),
            "headers": dict(self.headers),
            "secret_headers": list(self.secret_headers),
            "key_sent": self.key_sent,
            "stream_options": dict(self.stream_options),
            "url_password": self.url_password,
        }

    @classmethod
    def from_json(cls, data: Any) -> SentRequest | None:
        """The record, or None when `data` is not one (absent, or written by another build)."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            return None
        try:
            messages = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in data.get("messages", ()))
            api_base = data.get("api_base")
            return cls(
                account_id=str(data["account_id"]),
                provider_id=str(data["provider_id"]),
                base_url=str(data["base_url"]),
                api_base=None if api_base is None else str(api_base),
                litellm_model=str(data["litellm_model"]),
                model=str(data["model"]),
                messages=messages,
                params=dict(data.get("params") or {}),
                headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                secret_headers=tuple(str(n) for n in data.get("secret_headers") or ()),
                key_sent=bool(data.get("key_sent", True)),
                stream_options=dict(data.get("stream_options") or {}),
                url_password=bool(data.get("url_password", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
