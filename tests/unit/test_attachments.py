"""Attached files: images fitted to the provider, text inlined, PDFs kept, bad files refused in a sentence."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.domain.attachments import (
    DEFAULT_IMAGE_LIMITS,
    AttachedFile,
    Attachment,
    AttachmentKind,
    AttachmentRefused,
    ImageLimits,
    content_parts,
    fenced,
    image_limits,
)
from desktop_app.services.chat.attachments import AttachmentStore, pdf_text, prepare

ANTHROPIC = image_limits("anthropic")


def photo(width: int, height: int, *, exif_orientation: int = 1) -> bytes:
    """A JPEG with detail in it (noise compresses badly, as photos do)."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation != 1:
        exif[0x0112] = exif_orientation
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def png(width: int, height: int, *, alpha: bool) -> bytes:
    image = Image.new("RGBA" if alpha else "RGB", (width, height), (200, 30, 30, 100) if alpha else (1, 2, 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text`, with a correct cross-reference table."""
    stream = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_big_photo_is_scaled_to_the_providers_side_and_bytes_and_says_so() -> None:
    data = photo(4000, 3000)
    prepared = prepare(data, "beach.jpg", ANTHROPIC)
    attachment = prepared.attachment
    assert (attachment.kind, attachment.media_type) == (AttachmentKind.IMAGE, "image/jpeg")
    assert (attachment.width, attachment.height) == (1568, 1176)
    assert attachment.size == len(prepared.data) <= ANTHROPIC.max_bytes
    assert Image.open(io.BytesIO(prepared.data)).size == (1568, 1176)
    assert attachment.note.startswith("beach.jpg was scaled down from 4000×3000 to 1568×1176 (")


def test_an_image_that_fits_is_sent_as_it_is() -> None:
    data = png(64, 32, alpha=True)
    prepared = prepare(data, "icon.png", ANTHROPIC)
    assert prepared.data == data and prepared.attachment.note == ""
    assert (prepared.attachment.media_type, prepared.attachment.width, prepared.attachment.height) == (
        "image/png",
        64,
        32,
    )


def test_a_transparent_image_stays_a_png_and_an_opaque_one_becomes_a_jpeg_when_scaled() -> None:
    see_through = prepare(png(3000, 1000, alpha=True), "logo.png", ANTHROPIC).attachment
    assert (see_through.media_type, see_through.width, see_through.height) == ("image/png", 1568, 523)
    opaque = prepare(png(3000, 1000, alpha=False), "chart.png", ANTHROPIC).attachment
    assert opaque.media_type == "image/jpeg" and "converted to JPEG" in opaque.note


def test_a_photo_taken_sideways_is_turned_upright_by_its_exif_orientation() -> None:
    prepared = prepare(photo(300, 200, exif_orientation=6), "phone.jpg", ANTHROPIC)
    assert Image.open(io.BytesIO(prepared.data)).size == (200, 300)
    assert (prepared.attachment.width, prepared.attachment.height) == (200, 300)


def test_an_animated_gif_sends_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    prepared = prepare(out.getvalue(), "anim.gif", ANTHROPIC)
    image = Image.open(io.BytesIO(prepared.data))
    assert image.format in ("JPEG", "PNG") and image.size == (40, 20)
    assert image.convert("RGB").getpixel((20, 10))[0] > 200  # red: the first frame


@pytest.mark.parametrize(
    ("name", "data", "sentence"),
    [
        (
            "photo.png",
            b"this is not a picture",
            "photo.png is not an image ModelDesk can read (PNG, JPEG, WebP or GIF).",
        ),
        (
            "cut.png",
            png(200, 200, alpha=False)[:120],
            "cut.png is not an image ModelDesk can read (its data is damaged).",
        ),
        (
            "blob.bin",
            bytes(range(256)) * 4,
            "blob.bin is not a file ModelDesk can attach: images (PNG, JPEG, WebP, GIF), text files (code, Markdown,"
            " CSV, JSON, logs) and PDFs can be.",
        ),
        (
            "huge.log",
            b"line\n" * 60_000,
            "huge.log is 300 kB; text files are attached up to 256 kB, so attach the part that matters.",
        ),
    ],
)
def test_what_cannot_be_attached_is_refused_in_one_sentence(name: str, data: bytes, sentence: str) -> None:
    with pytest.raises(AttachmentRefused) as refused:
        prepare(data, name, ANTHROPIC)
    assert refused.value.message == sentence


@pytest.mark.asyncio
async def test_a_200_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "movie.mp4"
    with big.open("wb") as file:
        file.truncate(200 * 1024 * 1024)  # sparse: nothing is written, nothing will be read
    store = AttachmentStore(tmp_path / "attachments")
    with pytest.raises(AttachmentRefused) as refused:
        await store.add_file(big, ANTHROPIC)
    assert refused.value.message == "movie.mp4 is 209.7 MB; ModelDesk attaches files up to 50 MB."
    assert not (tmp_path / "attachments").exists()


@pytest.mark.asyncio
async def test_a_file_that_is_gone_or_a_folder_is_refused_in_one_sentence(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "attachments")
    with pytest.raises(AttachmentRefused) as refused:
        await store.add_file(tmp_path / "missing.txt", ANTHROPIC)
    assert refused.value.message == "missing.txt could not be read (No such file or directory)."
    with pytest.raises(AttachmentRefused) as refused:
        await store.add_file(tmp_path, ANTHROPIC)
    assert refused.value.message == f"{tmp_path.name} is a folder; attach the files in it one by one."


@pytest.mark.asyncio
async def test_a_file_attached_twice_is_stored_once_and_unused_files_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "attachments"
    store = AttachmentStore(root)
    source = tmp_path / "beach.jpg"
    source.write_bytes(photo(3000, 2000))
    first = await store.add_file(source, ANTHROPIC)
    second = await store.add_bytes(source.read_bytes(), "pasted image.jpg", ANTHROPIC)
    assert first.digest == second.digest and len(list(root.glob("??/*"))) == 1
    stored = await store.read(first)
    assert Image.open(io.BytesIO(stored)).size == (1568, 1045)
    notes = await store.add_bytes(b"# Notes\n", "notes.md", ANTHROPIC)
    assert await store.remove_unused({notes.digest}) == 1
    with pytest.raises(AttachmentRefused, match=r"^The attached file beach.jpg is no longer in "):
        await store.read(first)
    store.path_of(notes).write_bytes(b"# Changed\n")
    with pytest.raises(AttachmentRefused, match=r"^The attached file notes.md was changed on disk "):
        await store.read(notes)


def test_a_pdf_is_kept_as_a_document_and_its_text_can_be_read() -> None:
    prepared = prepare(minimal_pdf("Quarterly figures"), "report.pdf", ANTHROPIC)
    assert (prepared.attachment.kind, prepared.attachment.media_type) == (AttachmentKind.PDF, "application/pdf")
    assert "Quarterly figures" in pdf_text(prepared.data)
    with pytest.raises(AttachmentRefused, match=r"^The PDF could not be read"):
        pdf_text(b"%PDF-1.4\nnothing else")


def test_content_parts_put_the_text_first_then_each_file_in_order() -> None:
    image = prepare(png(10, 10, alpha=False), "dot.png", ANTHROPIC)
    text = prepare(b"print('```')\n", "code.py", ANTHROPIC)
    pdf = prepare(minimal_pdf("Hi"), "doc.pdf", ANTHROPIC)
    files = [AttachedFile(p.attachment, p.data) for p in (image, text)] + [AttachedFile(pdf.attachment, pdf.data, "Hi")]
    assert content_parts("Look", [], documents=True) == "Look"
    parts = content_parts("Look", files, documents=True)
    assert parts == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(image.data).decode()}},
        {"type": "text", "text": "code.py:\n````\nprint('```')\n\n````"},
        {
            "type": "file",
            "file": {
                "filename": "doc.pdf",
                "file_data": "data:application/pdf;base64," + base64.b64encode(pdf.data).decode(),
            },
        },
    ]
    without_documents = content_parts("", files[2:], documents=False)
    assert without_documents == [{"type": "text", "text": fenced("doc.pdf (its text)", "Hi")}]


def test_an_attachment_record_round_trips_and_a_forged_digest_is_refused() -> None:
    attachment = prepare(b"hello\n", "a.txt", ANTHROPIC).attachment
    assert Attachment.from_json(attachment.to_json()) == attachment
    with pytest.raises(ValueError, match="not a SHA-256 digest"):
        Attachment.from_json({**attachment.to_json(), "digest": "../../etc/passwd"})


def test_the_limits_of_several_providers_are_the_tightest_of_each() -> None:
    assert image_limits("openai", "anthropic") == ImageLimits(1568, 3_750_000)
    assert image_limits("gemini", "openai") == ImageLimits(2048, 15_000_000)
    assert image_limits() == image_limits("ollama") == DEFAULT_IMAGE_LIMITS


@pytest.mark.asyncio
async def test_an_image_is_fitted_again_to_tighter_limits_and_left_alone_within_them(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    roomy = ImageLimits(4000, 20_000_000)
    wide = await store.add_bytes(png(3000, 1500, alpha=False), "wide.png", roomy)
    notes = await store.add_bytes(b"# notes\n", "notes.md", roomy)
    assert wide.width == 3000 and wide.fits(roomy)

    assert await store.fit(wide, roomy) == wide
    assert await store.fit(notes, ANTHROPIC) == notes  # only images have limits
    fitted = await store.fit(wide, ANTHROPIC)
    assert (fitted.width, fitted.height, fitted.media_type) == (1568, 784, "image/jpeg")
    assert fitted.note.startswith("wide.png was scaled down from 3000×1500 to 1568×784 and converted to JPEG")
    assert store.path_of(fitted).is_file() and store.path_of(wide).is_file()  # the first one stays too
    assert await store.fit(fitted, ANTHROPIC) == fitted

    store.path_of(wide).unlink()
    with pytest.raises(AttachmentRefused, match=r"wide\.png is no longer in"):
        await store.fit(wide, ImageLimits(1000, 3_750_000))
