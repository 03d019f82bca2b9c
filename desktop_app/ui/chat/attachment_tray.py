"""Files attached to the message being written: an Attach button, paste and drop on the composer,
and a row of chips (a thumbnail or the file's name, × to remove) above it.

Preparing a file (reading, scaling an image, hashing) runs off the GUI thread in the chat service's
attachment store; what cannot be attached is said in one sentence, and nothing is lost from the
composer. The chips stay until the message is stored with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QObject, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QBrush,
    QGuiApplication,
    QImage,
    QImageReader,
    QKeySequence,
    QPixmap,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextImageFormat,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

from desktop_app.domain.attachments import Attachment, AttachmentKind, AttachmentRefused
from desktop_app.domain.errors import DomainError
from desktop_app.services.chat.service import ChatService
from desktop_app.ui.chat.image_viewer import AttachmentViewer

THUMBNAIL = QSize(56, 56)
TRANSCRIPT_THUMBNAIL = QSize(160, 120)
FILE_FILTER = (
    "Images and documents (*.png *.jpg *.jpeg *.webp *.gif *.pdf *.txt *.md *.csv *.json *.log *.py *.*);;All files (*)"
)


def thumbnail(path: Path, size: QSize = THUMBNAIL) -> QPixmap:
    """The image at `path`, read scaled (a large photo is never decoded at full size for this)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    original = reader.size()
    if original.isValid():
        reader.setScaledSize(original.scaled(size, Qt.AspectRatioMode.KeepAspectRatio))
    return QPixmap.fromImage(reader.read())


def insert_attachment_line(
    cursor: QTextCursor,
    attachments: tuple[Attachment, ...],
    path_of: Callable[[Attachment], Path] | None,
    text_format: QTextCharFormat,
    link_colour: QBrush,
) -> None:
    """A line at `cursor` under a message: each image as a thumbnail (kept as a resource of the
    document, decoded scaled), each other file by its name; both link to `attachment:<digest>`."""
    document = cursor.document()
    cursor.insertBlock(QTextBlockFormat(), text_format)
    for i, attachment in enumerate(attachments):
        href = f"attachment:{attachment.digest}"
        if i:
            cursor.insertText("   ", text_format)
        if attachment.kind is AttachmentKind.IMAGE and path_of is not None:
            name = f"thumbnail:{attachment.digest}"
            if document.resource(QTextDocument.ResourceType.ImageResource, QUrl(name)) is None:
                image = thumbnail(path_of(attachment), TRANSCRIPT_THUMBNAIL).toImage()
                document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)
            picture = QTextImageFormat()
            picture.setName(name)
            picture.setAnchor(True)
            picture.setAnchorHref(href)
            picture.setToolTip(f"{attachment.name} — click to open")
            cursor.insertImage(picture)
        else:
            link = QTextCharFormat(text_format)
            link.setAnchor(True)
            link.setAnchorHref(href)
            link.setForeground(link_colour)
            cursor.insertText(f"📎 {attachment.name}", link)


class _Chip(QWidget):
    removed = Signal(str)

    def __init__(self, attachment: Attachment, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="attachmentChip")
        self.attachment = attachment
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 2, 2)
        layout.setSpacing(4)
        self.preview = QLabel()
        if attachment.kind is AttachmentKind.IMAGE:
            self.preview.setPixmap(thumbnail(path))
        else:
            self.preview.setText(f"{'PDF' if attachment.kind is AttachmentKind.PDF else 'Text'}: {attachment.name}")
        layout.addWidget(self.preview)
        self.remove_button = QToolButton(text="×", autoRaise=True)
        self.remove_button.setToolTip(f"Remove {attachment.name}")
        self.remove_button.setAccessibleName(f"Remove {attachment.name}")
        self.remove_button.clicked.connect(lambda: self.removed.emit(attachment.digest))
        layout.addWidget(self.remove_button)
        self.setToolTip("\n".join(filter(None, (attachment.name, attachment.note))))
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # a plain QWidget paints no border else
        self.setStyleSheet(
            "QWidget#attachmentChip { border: 1px solid palette(mid); border-radius: 4px;"
            " background: palette(alternate-base); }"
        )


class AttachmentTray(QWidget):
    """The chips of the files attached so far; `attachments` in the order attached."""

    changed = Signal()
    refused = Signal(str)  # the one sentence saying why a file could not be attached

    def __init__(
        self,
        *,
        composer: QPlainTextEdit,
        chat: ChatService,
        provider: Callable[[], str],
        spawn: Callable[..., Any],
        parent: QWidget | None = None,
    ) -> None:
        """`provider`: the provider of the model picked, whose limits an image is fitted to."""
        super().__init__(parent, objectName="attachmentTray")
        self._chat, self._provider, self._spawn = chat, provider, spawn
        self._chips: list[_Chip] = []
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.addStretch(1)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.setToolTip("Attach images, text files or PDFs (or paste or drop them on the message)")
        self.attach_button.clicked.connect(self._on_attach_button_clicked)
        self.setVisible(False)
        self._composer = composer
        composer.setAcceptDrops(True)
        composer.installEventFilter(self)
        composer.viewport().installEventFilter(self)

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(chip.attachment for chip in self._chips)

    def pending(self) -> frozenset[str]:
        """The digests of the files waiting to be sent (kept when unused files are cleaned up)."""
        return frozenset(a.digest for a in self.attachments)

    def clear(self) -> None:
        for chip in self._chips:
            chip.deleteLater()
        self._chips.clear()
        self.setVisible(False)
        self.changed.emit()

    async def add_path(self, path: Path) -> Attachment | None:
        return await self._add(self._chat.attach(path=path, name=path.name, provider_id=self._provider()))

    async def add_data(self, data: bytes, name: str) -> Attachment | None:
        return await self._add(self._chat.attach(data=data, name=name, provider_id=self._provider()))

    def show_attachment(self, attachment: Attachment) -> None:
        """Open an attached file shown in the transcript: a picture at full size."""
        viewer = AttachmentViewer(attachment, self._chat.attachment_path(attachment), self.window())
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        viewer.open()

    async def _add(self, preparing: Coroutine[Any, Any, Attachment]) -> Attachment | None:
        try:
            attachment = await preparing
        except (AttachmentRefused, DomainError) as exc:
            self.refused.emit(exc.message)
            return None
        if attachment.digest in {a.digest for a in self.attachments}:
            return attachment  # the same file twice goes once
        chip = _Chip(attachment, self._chat.attachment_path(attachment), self)
        chip.removed.connect(self._on_chip_removed)
        self._row.insertWidget(len(self._chips), chip)
        self._chips.append(chip)
        self.setVisible(True)
        self.changed.emit()
        return attachment

    async def _add_pasted(self, image: QImage) -> None:
        # QImage is reentrant: a copy is encoded on a worker thread, not the GUI's.
        await self.add_data(await asyncio.to_thread(_png_bytes, image.copy()), "pasted image.png")

    def _on_chip_removed(self, digest: str) -> None:
        for chip in [c for c in self._chips if c.attachment.digest == digest]:
            self._chips.remove(chip)
            chip.deleteLater()
        self.setVisible(bool(self._chips))
        self.changed.emit()

    def _on_attach_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach files", "", FILE_FILTER)
        for path in paths:
            self._spawn(self.add_path(Path(path)), name="chat:attach")

    # --- paste and drop on the composer --------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self._composer and kind == QEvent.Type.KeyPress and event.matches(QKeySequence.StandardKey.Paste):  # type: ignore[attr-defined]
            return self._take(QGuiApplication.clipboard().mimeData())
        if watched is self._composer.viewport():
            if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and _has_files(event.mimeData()):  # type: ignore[attr-defined]
                event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
            if kind == QEvent.Type.Drop and _has_files(event.mimeData()):  # type: ignore[attr-defined]
                event.acceptProposedAction()  # type: ignore[attr-defined]
                return self._take(event.mimeData())  # type: ignore[attr-defined]
        return super().eventFilter(watched, event)

    def _take(self, mime) -> bool:
        """Attach the files or the image in `mime`; False (the text goes in as usual) if none."""
        files = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
        if files:
            for path in files:
                self._spawn(self.add_path(path), name="chat:attach")
            return True
        if mime.hasImage():
            image = QImage(mime.imageData())
            if image.isNull():
                return False
            self._spawn(self._add_pasted(image), name="chat:attach")
            return True
        return False


def _has_files(mime) -> bool:
    return bool(
        mime is not None and ((mime.hasUrls() and any(u.isLocalFile() for u in mime.urls())) or mime.hasImage())
    )


def _png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())
