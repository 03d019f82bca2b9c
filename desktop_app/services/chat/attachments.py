"""Preparing attached files and keeping them by content hash under the data folder.

Everything here runs off the event loop (`asyncio.to_thread`): decoding a 12-megapixel photo,
scaling it to the provider's limits and encoding it again takes a few hundred milliseconds.
Pillow and pypdf are imported on first use, so a session that attaches nothing never loads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from desktop_app.domain.attachments import (
    MAX_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_TEXT_BYTES,
    Attachment,
    AttachmentKind,
    AttachmentRefused,
    ImageLimits,
    stored_name,
)
from desktop_app.services.paths import write_atomically

log = logging.getLogger(__name__)

_IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_KINDS_SENTENCE = "images (PNG, JPEG, WebP, GIF), text files (code, Markdown, CSV, JSON, logs) and PDFs"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
_JPEG_QUALITY = 85


def _megabytes(size: int) -> str:
    text = f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} kB"
    return text.replace(".0 MB", " MB")


@dataclass(frozen=True, slots=True)
class Prepared:
    attachment: Attachment
    data: bytes  # the bytes stored and sent


def prepare(data: bytes, name: str, limits: ImageLimits) -> Prepared:
    """The file as it will be sent: an image fitted to `limits`, a text file checked, a PDF as is.
    AttachmentRefused (one sentence) for what cannot be attached."""
    if len(data) > MAX_FILE_BYTES:
        raise AttachmentRefused(
            f"{name} is {_megabytes(len(data))}; ModelDesk attaches files up to {_megabytes(MAX_FILE_BYTES)}."
        )
    if data.startswith(b"%PDF-"):
        return _stored(name, AttachmentKind.PDF, "application/pdf", data)
    if _looks_like_image(data):
        return _prepare_image(data, name, limits)
    if name.lower().endswith(_IMAGE_SUFFIXES):
        raise AttachmentRefused(f"{name} is not an image ModelDesk can read (PNG, JPEG, WebP or GIF).")
    if b"\0" not in data[:8192]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if len(data) > MAX_TEXT_BYTES:
                raise AttachmentRefused(
                    f"{name} is {_megabytes(len(data))}; text files are attached up to "
                    f"{_megabytes(MAX_TEXT_BYTES)}, so attach the part that matters."
                )
            return _stored(name, AttachmentKind.TEXT, "text/plain", text.encode("utf-8"))
    raise AttachmentRefused(f"{name} is not a file ModelDesk can attach: {_KINDS_SENTENCE} can be.")


def _looks_like_image(data: bytes) -> bool:
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _stored(name: str, kind: AttachmentKind, media_type: str, data: bytes, **image: object) -> Prepared:
    digest = hashlib.sha256(data).hexdigest()
    attachment = Attachment(digest=digest, name=name, kind=kind, media_type=media_type, size=len(data), **image)  # type: ignore[arg-type]
    return Prepared(attachment, data)


def _prepare_image(data: bytes, name: str, limits: ImageLimits) -> Prepared:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise AttachmentRefused(
                f"{name} is {width}×{height} pixels; ModelDesk attaches images up to "
                f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels."
            )
        source_format = image.format or ""
        fits = max(width, height) <= limits.long_side and len(data) <= limits.max_bytes
        orientation = image.getexif().get(0x0112, 1) if source_format in ("JPEG", "WEBP") else 1
        if fits and source_format in ("PNG", "JPEG", "WEBP") and orientation == 1:
            image.load()  # a file whose header is fine but whose pixels are not is refused here
            return _stored(
                name,
                AttachmentKind.IMAGE,
                _IMAGE_FORMATS[source_format],
                data,
                width=width,
                height=height,
            )
        scale = min(1.0, limits.long_side / max(width, height))
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        if source_format == "JPEG":
            image.draft("RGB", target)  # decode at a reduced size straight from the DCT: much faster
        image.seek(0)  # a GIF's first frame
        image = ImageOps.exif_transpose(image)
        if image.mode not in ("RGB", "RGBA", "L"):
            image = image.convert("RGBA" if "transparency" in image.info or image.mode in ("LA", "PA", "P") else "RGB")
        target = target if orientation in (1, 2, 3, 4) else (target[1], target[0])
        if image.size != target:
            image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded, media_type = _encode(image, limits)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AttachmentRefused(f"{name} is not an image ModelDesk can read (its data is damaged).") from None
    done = []
    if image.size != (width, height):
        done.append(f"scaled down from {width}×{height} to {image.size[0]}×{image.size[1]}")
    if media_type != _IMAGE_FORMATS.get(source_format):
        done.append(f"converted to {media_type.split('/')[1].upper()}")
    note = f"{name} was {' and '.join(done) or 'encoded again'} ({_megabytes(len(data))} → {_megabytes(len(encoded))})."
    return _stored(
        name, AttachmentKind.IMAGE, media_type, encoded, width=image.size[0], height=image.size[1], note=note
    )


def _encode(image: object, limits: ImageLimits) -> tuple[bytes, str]:
    """PNG where there is transparency, JPEG otherwise; smaller and smaller until it fits the bytes."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    lowest = image.getchannel("A").getextrema()[0] if image.mode == "RGBA" else 255
    alpha = isinstance(lowest, int | float) and lowest < 255  # some pixel is see-through
    for attempt in range(6):
        out = io.BytesIO()
        if alpha:
            image.save(out, "PNG", compress_level=6)
        else:
            image.convert("RGB").save(out, "JPEG", quality=_JPEG_QUALITY - 10 * attempt, optimize=False)
        if out.tell() <= limits.max_bytes:
            return out.getvalue(), "image/png" if alpha else "image/jpeg"
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)), Image.Resampling.LANCZOS)
    raise ValueError("the image does not fit the provider's size even scaled down")


def pdf_text(data: bytes) -> str:
    """The text pypdf can read from a PDF, page by page ('' for a scan with no text layer)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise AttachmentRefused(f"The PDF could not be read ({type(exc).__name__}).") from None


class AttachmentStore:
    """Attached files under `root`, one file per digest: `root/ab/abcdef….jpg`."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, attachment: Attachment) -> Path:
        return self._root / attachment.digest[:2] / f"{attachment.digest}{attachment.suffix}"

    async def add_file(self, path: Path, limits: ImageLimits) -> Attachment:
        """Attach the file at `path` (read, prepared and stored off the event loop)."""
        return await asyncio.to_thread(self._add_file, path, limits)

    async def add_bytes(self, data: bytes, name: str, limits: ImageLimits) -> Attachment:
        """Attach pasted data (an image from the clipboard, say)."""
        return await asyncio.to_thread(self._keep, data, name, limits)

    async def keep_as_is(self, files: Mapping[str, tuple[str, bytes]]) -> None:
        """Store files exactly as given ({digest: (media type, bytes)}, the digests checked by the
        caller): an imported conversation's, which were prepared when first attached."""
        await asyncio.to_thread(self._keep_as_is, dict(files))

    async def fit(self, attachment: Attachment, limits: ImageLimits) -> Attachment:
        """`attachment` as a provider with `limits` takes it: itself when it fits, else an image
        scaled again from the stored one (and kept beside it). AttachmentRefused if it is gone."""
        if attachment.fits(limits):
            return attachment
        return await asyncio.to_thread(lambda: self._keep(self._read(attachment), attachment.name, limits))

    async def read(self, attachment: Attachment) -> bytes:
        """The stored bytes; AttachmentRefused when the file is gone or changed since."""
        return await asyncio.to_thread(self._read, attachment)

    async def check(self, attachments: Iterable[Attachment]) -> None:
        """AttachmentRefused for the first file no longer on disk at its size (a cheap look before a
        message is stored; `read` checks the bytes themselves when they are sent)."""
        await asyncio.to_thread(self._check, tuple(attachments))

    async def remove_unused(self, used: Iterable[str]) -> int:
        """Delete the stored files whose digest is not in `used`; how many went."""
        keep = set(used)
        return await asyncio.to_thread(self._remove_unused, keep)

    def _add_file(self, path: Path, limits: ImageLimits) -> Attachment:
        name = path.name
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise AttachmentRefused(
                    f"{name} is {_megabytes(size)}; ModelDesk attaches files up to {_megabytes(MAX_FILE_BYTES)}."
                )
            data = path.read_bytes()
        except PermissionError:
            raise AttachmentRefused(f"{name} could not be read: permission denied.") from None
        except IsADirectoryError:
            raise AttachmentRefused(f"{name} is a folder; attach the files in it one by one.") from None
        except OSError as exc:
            raise AttachmentRefused(f"{name} could not be read ({exc.strerror or type(exc).__name__}).") from None
        return self._keep(data, name, limits)

    def _keep(self, data: bytes, name: str, limits: ImageLimits) -> Attachment:
        prepared = prepare(data, name, limits)
        target = self.path_of(prepared.attachment)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, prepared.data)
        return prepared.attachment

    def _keep_as_is(self, files: dict[str, tuple[str, bytes]]) -> None:
        for digest, (media_type, data) in files.items():
            target = self._root / stored_name(digest, media_type)
            if not target.exists():
                write_atomically(target, data)

    def _read(self, attachment: Attachment) -> bytes:
        path = self.path_of(attachment)
        try:
            data = path.read_bytes()
        except OSError:
            raise AttachmentRefused(f"The attached file {attachment.name} is no longer in {path.parent}.") from None
        if hashlib.sha256(data).hexdigest() != attachment.digest:
            raise AttachmentRefused(f"The attached file {attachment.name} was changed on disk ({path}).")
        return data

    def _check(self, attachments: tuple[Attachment, ...]) -> None:
        for attachment in attachments:
            path = self.path_of(attachment)
            try:
                size = path.stat().st_size
            except OSError:
                raise AttachmentRefused(f"The attached file {attachment.name} is no longer in {path.parent}.") from None
            if size != attachment.size:
                raise AttachmentRefused(f"The attached file {attachment.name} was changed on disk ({path}).")

    def _remove_unused(self, keep: set[str]) -> int:
        removed = 0
        if not self._root.is_dir():
            return 0
        for path in self._root.glob("??/*"):
            if path.is_file() and path.stem not in keep and len(path.stem) == 64:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
