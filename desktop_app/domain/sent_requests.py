"""The request that produced a reply, as sent: stored with the reply so it can be shown as code.

It holds what was handed to LiteLLM after unsupported parameters were dropped, never the key, the
value of a credential header (only its name) or the password of a URL's user info. Cloud accounts add
where the request went beyond the URL (Azure's API version, Vertex AI's project and location, Bedrock's
region and AWS profile name); records written before these existed load with them unset. Stored, a message
stretch that is a stretch of the conversation's stored messages is kept as a run of their ids (with
their count and a checksum), so a conversation's records grow with its length, not its square.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FORMAT_VERSION = 2
# Optional fields of cloud accounts, written only when set (a record without them is read as before).
_CLOUD_FIELDS = ("api_version", "project", "location", "region", "aws_profile")
_CHECK_MOD = 2**32


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
    messages: tuple[dict[str, Any], ...]  # as sent, the system prompt first (content: text, or parts)
    params: dict[str, Any] = field(default_factory=dict)  # every parameter sent, after dropping
    headers: dict[str, str] = field(default_factory=dict)  # the account's extra headers (no credentials)
    secret_headers: tuple[str, ...] = ()  # names of credential headers sent (values never kept)
    key_sent: bool = True  # False: a placeholder went instead of a key (a local server without one)
    stream_options: dict[str, Any] = field(default_factory=dict)
    url_password: bool = False  # the URLs had a password after their user name, left out here
    missing: int = 0  # messages left out of `messages`: their run of stored messages was deleted or changed
    api_version: str | None = None  # Azure OpenAI: the data-plane api-version
    project: str | None = None  # Vertex AI: the Google Cloud project (the account's, else its key's)
    location: str | None = None  # Vertex AI: the region
    region: str | None = None  # Bedrock: the AWS region
    aws_profile: str | None = None  # Bedrock: the named AWS profile that signed, if one did (never keys)

    def to_json(self, stored: Sequence[tuple[int, str, str]] = ()) -> dict[str, Any]:
        """The record; stretches of messages that are stretches of `stored` ((id, role, text) of the
        conversation's stored messages, by id) are kept as runs of ids."""
        return {
            "version": FORMAT_VERSION,
            "account_id": self.account_id,
            "provider_id": self.provider_id,
            "base_url": self.base_url,
            "api_base": self.api_base,
            "litellm_model": self.litellm_model,
            "model": self.model,
            "messages": _compact(self.messages, stored),
            "params": dict(self.params),
            "headers": dict(self.headers),
            "secret_headers": list(self.secret_headers),
            "key_sent": self.key_sent,
            "stream_options": dict(self.stream_options),
            "url_password": self.url_password,
            **{name: value for name in _CLOUD_FIELDS if (value := getattr(self, name)) is not None},
        }

    @classmethod
    def from_json(cls, data: Any, stored: StoredMessages | None = None) -> SentRequest | None:
        """The record, or None when `data` is not one (absent, or written by another build). The
        messages of a run `stored` cannot resolve (deleted, or changed since) are counted in `missing`."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            return None
        try:
            messages: list[dict[str, Any]] = []
            missing = 0
            for m in data.get("messages", ()):
                if "run" not in m:
                    content = m["content"]
                    if not isinstance(content, list) and content is not None:
                        content = str(content)
                    messages.append({"role": str(m["role"]), "content": content, **_tool_fields(m)})
                    continue
                first, last = m["run"]
                count = int(m["count"])
                found = None if stored is None else stored.run(int(first), int(last), count, int(m["check"]))
                if found is None:
                    missing += count
                else:
                    messages.extend(found)
            api_base = data.get("api_base")
            return cls(
                account_id=str(data["account_id"]),
                provider_id=str(data["provider_id"]),
                base_url=str(data["base_url"]),
                api_base=None if api_base is None else str(api_base),
                litellm_model=str(data["litellm_model"]),
                model=str(data["model"]),
                messages=tuple(messages),
                params=dict(data.get("params") or {}),
                headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                secret_headers=tuple(str(n) for n in data.get("secret_headers") or ()),
                key_sent=bool(data.get("key_sent", True)),
                stream_options=dict(data.get("stream_options") or {}),
                url_password=bool(data.get("url_password", False)),
                missing=missing,
                api_version=_optional_text(data, "api_version"),
                project=_optional_text(data, "project"),
                location=_optional_text(data, "location"),
                region=_optional_text(data, "region"),
                aws_profile=_optional_text(data, "aws_profile"),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else str(value)


def message_check(role: str, content: str) -> int:
    """A message's checksum; a run's is the sum of its messages' (mod 2**32)."""
    return zlib.crc32(content.encode("utf-8", "surrogatepass"), zlib.crc32(role.encode() + b"\0"))


def _compact(messages: Sequence[Mapping[str, Any]], stored: Sequence[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """`messages` with each stretch that is a stretch of `stored` ((id, role, text) by id) as one run."""
    positions: dict[tuple[str, str], list[int]] = {}
    for position, (_, role, content) in enumerate(stored):
        positions.setdefault((role, content), []).append(position)
    out: list[dict[str, Any]] = []
    run: dict[str, Any] | None = None
    following = 0  # the position in `stored` that would extend the open run
    for message in messages:
        role, content = message["role"], message["content"]
        if _tool_fields(message):  # tool calls and results: inline, whole
            run = None
            out.append(dict(message))
            continue
        if not isinstance(content, str):  # parts: attached files, each kept as its digest
            run = None
            out.append({"role": role, "content": _parts_by_digest(content)})
            continue
        at = positions.get((role, content), [])
        found = at[bisect_left(at, following)] if at and at[-1] >= following else None
        if found is None:
            run = None
            out.append({"role": role, "content": content})
            continue
        if run is None or found != following:
            run = {"run": [stored[found][0], stored[found][0]], "count": 0, "check": 0}
            out.append(run)
        run["run"][1] = stored[found][0]
        run["count"] += 1
        run["check"] = (run["check"] + message_check(role, content)) % _CHECK_MOD
        following = found + 1
    return out


def _tool_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message's tool calls (an assistant's) or the call it answers (a tool message)."""
    return {k: message[k] for k in ("tool_calls", "tool_call_id") if k in message}


def _parts_by_digest(parts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Content parts with each file's base64 data replaced by its SHA-256 (`data:<type>;sha256,<hex>`):
    the file is kept once among the attachments, not in every request that sent it."""
    out = []
    for part in parts:
        part = dict(part)
        for key, field_name in (("image_url", "url"), ("file", "file_data")):
            inner = part.get(key)
            if isinstance(inner, Mapping) and isinstance(url := inner.get(field_name), str) and ";base64," in url:
                head, _, data = url.partition(";base64,")
                digest = hashlib.sha256(base64.b64decode(data)).hexdigest()
                part[key] = {**inner, field_name: f"{head};sha256,{digest}"}
        out.append(part)
    return out


class StoredMessages:
    """The stored messages of a conversation that runs resolve to. Each message is checked once, and
    its dict is shared by every request that refers to it."""

    def __init__(self, rows: Iterable[tuple[int, str, str]]) -> None:
        self._rows = sorted(rows)
        self._ids = [row[0] for row in self._rows]
        self._resolved: dict[int, tuple[int, dict[str, str]]] = {}

    def run(self, first: int, last: int, count: int, check: int) -> list[dict[str, str]] | None:
        """The run's messages, or None when they are no longer the ones sent (deleted or changed)."""
        start, end = bisect_left(self._ids, first), bisect_right(self._ids, last)
        if end - start != count:
            return None
        messages, total = [], 0
        for id_, role, content in self._rows[start:end]:
            if (seen := self._resolved.get(id_)) is None:
                seen = self._resolved[id_] = (message_check(role, content), {"role": role, "content": content})
            total += seen[0]
            messages.append(seen[1])
        return messages if total % _CHECK_MOD == check else None
