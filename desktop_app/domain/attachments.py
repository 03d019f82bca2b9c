"""Files attached to a message: what is kept of them, the limits they are fitted to, and how they
go out as OpenAI-style content parts (LiteLLM converts those for Anthropic, Gemini and Ollama).

An attachment is stored once, by the SHA-256 of the bytes sent, and messages refer to it by that
digest, so history, branches and compare columns share one copy.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from desktop_app.domain.errors import DomainError

MAX_FILE_BYTES = 50_000_000  # anything bigger is refused before it is read
MAX_TEXT_BYTES = 256_000  # a text file is sent inline; past this it would swamp the context
MAX_IMAGE_PIXELS = 100_000_000  # a bigger picture is refused undecoded (a decompression bomb, or a scan)


class AttachmentRefused(DomainError):
    """A file that cannot be attached, said in one sentence; nothing was stored."""


class AttachmentKind(StrEnum):
    IMAGE = "image"
    TEXT = "text"  # inlined in the message as a fenced block with the file name
    PDF = "pdf"  # a document where the provider takes one, its text elsewhere


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What a provider takes: the longest side in pixels and the bytes of one image."""

    long_side: int
    max_bytes: int


# Anthropic: 5 MB per image as base64 (so 3.75 MB of bytes), and it scales anything over 1,568 px on
# its longest side down itself (docs.anthropic.com, "Vision"). OpenAI: fits images into 2,048 px
# (platform.openai.com, "Images and vision"), 20 MB per image. Gemini: 20 MB for the whole inline
# request. Others (Ollama, llama-server, unknown servers): the OpenAI size with Anthropic's bytes.
_LIMITS = {
    "anthropic": ImageLimits(1568, 3_750_000),
    "openai": ImageLimits(2048, 20_000_000),
    "gemini": ImageLimits(3072, 15_000_000),
}
DEFAULT_IMAGE_LIMITS = ImageLimits(2048, 3_750_000)


def image_limits(provider_id: str) -> ImageLimits:
    return _LIMITS.get(provider_id, DEFAULT_IMAGE_LIMITS)


@dataclass(frozen=True, slots=True)
class Attachment:
    digest: str  # SHA-256 of the stored bytes, hex
    name: str  # the file name the user attached (or "pasted image.png")
    kind: AttachmentKind
    media_type: str  # of the stored bytes: image/jpeg, image/png, text/plain, application/pdf
    size: int  # bytes stored
    width: int = 0  # images only
    height: int = 0
    note: str = ""  # what was done to it before sending ("Scaled down from 4000×3000 to ..."), if anything

    @property
    def suffix(self) -> str:
        return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "application/pdf": ".pdf"}.get(
            self.media_type, ".txt"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "name": self.name,
            "kind": self.kind.value,
            "media_type": self.media_type,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attachment:
        digest = str(data["digest"])
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("not a SHA-256 digest")
        return cls(
            digest=digest,
            name=str(data["name"]),
            kind=AttachmentKind(data["kind"]),
            media_type=str(data["media_type"]),
            size=int(data["size"]),
            width=int(data.get("width", 0)),
            height=int(data.get("height", 0)),
            note=str(data.get("note", "")),
        )


def fenced(name: str, text: str) -> str:
    """A text file as the model sees it: its name, then its text in a fence no line of it closes."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{name}:\n{fence}\n{text}\n{fence}"


def content_parts(
    text: str,
    attachments: list[tuple[Attachment, bytes]],
    *,
    documents: bool,
    pdf_text: dict[str, str] | None = None,
) -> str | list[dict[str, Any]]:
    """The message's content as sent: plain text when nothing is attached, else OpenAI-style parts,
    the user's text first, then each file in the order attached. `documents`: the provider takes a
    PDF as a document; otherwise `pdf_text` (digest -> extracted text) goes inline instead."""
    if not attachments:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for attachment, data in attachments:
        if attachment.kind is AttachmentKind.IMAGE:
            url = f"data:{attachment.media_type};base64,{base64.b64encode(data).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif attachment.kind is AttachmentKind.TEXT:
            parts.append({"type": "text", "text": fenced(attachment.name, data.decode("utf-8"))})
        elif documents:
            url = f"data:application/pdf;base64,{base64.b64encode(data).decode()}"
            parts.append({"type": "file", "file": {"filename": attachment.name, "file_data": url}})
        else:
            extracted = (pdf_text or {}).get(attachment.digest, "")
            parts.append({"type": "text", "text": fenced(f"{attachment.name} (its text)", extracted)})
    return parts
