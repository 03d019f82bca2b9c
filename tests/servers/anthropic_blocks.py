"""Anthropic's content blocks (image, document, text...), as the Messages API documents them.

Sources: docs.anthropic.com/en/api/messages, /en/docs/build-with-claude/vision and /pdf-support.
Checked: `image` with a `source` of type `base64`
({media_type: image/jpeg|png|gif|webp, data}) or `url` ({url}); `document` with a `base64`
source of media_type application/pdf, a `text` source (media_type text/plain, data), or `url`.
The base64 must decode, the bytes must be what the media type says (Anthropic reads the magic
number: "Image does not match the provided media type image/png"), and an image's base64 may not
pass 5 MB ("image exceeds 5 MB maximum: N bytes > 5242880 bytes"). The wording of these answers
is Anthropic's, as seen in its 400 invalid_request_error bodies.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
)
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_BASE64 = 5 * 1024 * 1024  # bytes of base64 text per image
_BLOCK_FIELDS = {
    "text": {"text", "cache_control", "citations"},
    "image": {"source", "cache_control"},
    "document": {"source", "cache_control", "citations", "context", "title"},
}
# Prompt caching (docs.anthropic.com/en/docs/build-with-claude/prompt-caching): a breakpoint is
# `cache_control: {"type": "ephemeral"}` (an optional ttl of "5m" or "1h"), at most 4 per request.
MAX_CACHE_BREAKPOINTS = 4
CACHE_TTLS = ("5m", "1h")


class AnthropicError(Exception):
    """An error answer with Anthropic's body; ``close`` drops the connection afterwards."""

    def __init__(
        self, status: int, type_: str, message: str, headers: tuple[tuple[str, str], ...] = (), close: bool = False
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.headers, self.close = status, type_, headers, close

    def body(self, request_id: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": str(self)}, "request_id": request_id}


def _invalid(message: str) -> AnthropicError:
    return AnthropicError(400, "invalid_request_error", message)


def _image_type(data: bytes) -> str | None:
    """The media type the bytes' magic number says, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_cache_control(value: Any, at: str) -> None:
    """A block's `cache_control`, as the Messages API takes it."""
    at = f"{at}.cache_control"
    if not isinstance(value, dict):
        raise _invalid(f"{at}: Input should be a valid dictionary or object to extract fields from")
    if value.get("type") != "ephemeral":
        raise _invalid(
            f"{at}: Input tag '{value.get('type')}' found using 'type' does not match any of the expected tags: "
            "'ephemeral'"
        )
    if unknown := sorted(set(value) - {"type", "ttl"}):
        raise _invalid(f"{at}.ephemeral.{unknown[0]}: Extra inputs are not permitted")
    if "ttl" in value and value["ttl"] not in CACHE_TTLS:
        raise _invalid(f"{at}.ephemeral.ttl: Input should be '5m' or '1h'")


def count_breakpoints(body: dict[str, Any]) -> int:
    """The blocks marked with `cache_control` in tools, system and messages; more than 4 is refused
    with Anthropic's sentence."""
    blocks: list[Any] = list(body.get("tools") or [])
    if isinstance(body.get("system"), list):
        blocks += body["system"]
    for message in body.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            blocks += message["content"]
    found = sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)
    if found > MAX_CACHE_BREAKPOINTS:
        raise _invalid(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        )
    return found


def _check_block(block: dict[str, Any], at: str) -> None:
    """One content block (see the module docstring); text, image and document are checked in full."""
    kind = block["type"]
    if kind not in BLOCK_TYPES:
        tags = ", ".join(f"'{t}'" for t in BLOCK_TYPES)
        raise _invalid(f"{at}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {tags}")
    if "cache_control" in block:
        check_cache_control(block["cache_control"], at)
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _invalid(f"{at}.text: Field required")
        if unknown := sorted(set(block) - {"type"} - _BLOCK_FIELDS[kind]):
            raise _invalid(f"{at}.text.{unknown[0]}: Extra inputs are not permitted")
    if kind not in ("image", "document"):
        return
    at = f"{at}.{kind}"
    if unknown := sorted(set(block) - {"type"} - _BLOCK_FIELDS[kind]):
        raise _invalid(f"{at}.{unknown[0]}: Extra inputs are not permitted")
    source = block.get("source")
    if not isinstance(source, dict):
        raise _invalid(f"{at}.source: Field required")
    sources = ("base64", "url") if kind == "image" else ("base64", "text", "url", "content")
    source_type = source.get("type")
    if source_type not in sources:
        tags = ", ".join(f"'{t}'" for t in sources)
        raise _invalid(
            f"{at}.source: Input tag '{source_type}' found using 'type' does not match any of the expected tags: {tags}"
        )
    at = f"{at}.source.{source_type}"
    fields = {"base64": {"media_type", "data"}, "text": {"media_type", "data"}, "url": {"url"}}.get(source_type, set())
    for name in sorted(fields):
        if not isinstance(source.get(name), str):
            raise _invalid(
                f"{at}.{name}: Field required" if name not in source else f"{at}.{name}: Input should be a valid string"
            )
    if unknown := sorted(set(source) - {"type"} - fields):
        raise _invalid(f"{at}.{unknown[0]}: Extra inputs are not permitted")
    if source_type == "url":
        if not source["url"].startswith(("http://", "https://")):
            raise _invalid(f"{at}.url: Input should be a valid URL")
        return
    if source_type == "text":
        if source["media_type"] != "text/plain":
            raise _invalid(f"{at}.media_type: Input should be 'text/plain'")
        return
    media_type = source["media_type"]
    allowed = IMAGE_MEDIA_TYPES if kind == "image" else ("application/pdf",)
    if media_type not in allowed:
        listed = ", ".join(f"'{t}'" for t in allowed[:-1])
        listed = f"{listed} or '{allowed[-1]}'" if listed else f"'{allowed[-1]}'"
        raise _invalid(f"{at}.media_type: Input should be {listed}")
    text = source["data"]
    if kind == "image" and len(text) > MAX_IMAGE_BASE64:
        raise _invalid(f"{at}: image exceeds 5 MB maximum: {len(text)} bytes > {MAX_IMAGE_BASE64} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{at}.data: Invalid base64 data") from None
    if kind == "image" and _image_type(data) != media_type:
        raise _invalid(f"{at}.data: Image does not match the provided media type {media_type}")
    if kind == "document" and not data.startswith(b"%PDF-"):
        raise _invalid(f"{at}.data: The PDF specified was not valid.")
