"""Files attached to a message: what is kept of them, the limits they are fitted to, and how they
go out as OpenAI-style content parts (LiteLLM converts those for Anthropic, Gemini and Ollama).

An attachment is stored once, by the SHA-256 of the bytes sent, and messages refer to it by that
digest, so history, branches and compare columns share one copy.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
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


def image_limits(*provider_ids: str) -> ImageLimits:
    """What every one of the providers takes (the tightest of their limits: compare columns)."""
    limits = [_LIMITS.get(p, DEFAULT_IMAGE_LIMITS) for p in provider_ids] or [DEFAULT_IMAGE_LIMITS]
    return ImageLimits(min(x.long_side for x in limits), min(x.max_bytes for x in limits))


def suffix_of(media_type: str) -> str:
    """The suffix of a stored file of this type (the attachments folder names files `<digest><suffix>`)."""
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "application/pdf": ".pdf"}.get(
        media_type, ".txt"
    )


def stored_name(digest: str, media_type: str) -> str:
    """Where a stored file is, relative to the attachments folder: `ab/abcdef….jpg`."""
    return f"{digest[:2]}/{digest}{suffix_of(media_type)}"


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
        return suffix_of(self.media_type)

    def fits(self, limits: ImageLimits) -> bool:
        """Whether it goes as it is to a provider with `limits` (anything but an image does)."""
        if self.kind is not AttachmentKind.IMAGE:
            return True
        return max(self.width, self.height) <= limits.long_side and self.size <= limits.max_bytes

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


@dataclass(frozen=True, slots=True)
class AttachedFile:
    """An attachment with its bytes, read for a request; `text` is a PDF's text where it has one."""

    attachment: Attachment
    data: bytes
    text: str = ""


def fenced(name: str, text: str) -> str:
    """A text file as the model sees it: its name, then its text in a fence no line of it closes."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{name}:\n{fence}\n{text}\n{fence}"


def content_parts(
    text: str, files: Sequence[AttachedFile], *, documents: bool, one_text: bool = False
) -> str | list[dict[str, Any]]:
    """The message's content as sent: plain text when nothing is attached, else OpenAI-style parts,
    the user's text first, then each file in the order attached. `documents`: the provider takes a
    PDF as a document; otherwise its text goes inline instead. `one_text`: the provider takes one
    text per message (LiteLLM glues an Ollama message's text parts together with nothing between
    them), so the texts go first as one part, a blank line apart, and the images after it."""
    if not files:
        return text
    if one_text:
        separate = content_parts(text, files, documents=documents)
        assert isinstance(separate, list)
        texts = [p["text"] for p in separate if p["type"] == "text"]
        joined = [{"type": "text", "text": "\n\n".join(texts)}] if texts else []
        return joined + [p for p in separate if p["type"] != "text"]
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for file in files:
        attachment, data = file.attachment, file.data
        if attachment.kind is AttachmentKind.IMAGE:
            url = f"data:{attachment.media_type};base64,{base64.b64encode(data).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif attachment.kind is AttachmentKind.TEXT:
            parts.append({"type": "text", "text": fenced(attachment.name, data.decode("utf-8"))})
        elif documents:
            url = f"data:application/pdf;base64,{base64.b64encode(data).decode()}"
            parts.append({"type": "file", "file": {"filename": attachment.name, "file_data": url}})
        else:
            parts.append({"type": "text", "text": fenced(f"{attachment.name} (its text)", file.text)})
    return parts


# Providers whose API takes a PDF as a document (LiteLLM turns the `file` part into theirs).
DOCUMENT_PROVIDERS = frozenset({"anthropic", "openai", "gemini"})
# Providers whose API takes one text per message, images apart (see `content_parts`).
ONE_TEXT_PROVIDERS = frozenset({"ollama"})
