"""An attached file opened from the transcript: an image at full size in a scrolling view, any
other file by its name, kind and size (and where it is kept)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImageReader, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from desktop_app.domain.attachments import Attachment, AttachmentKind


class AttachmentViewer(QDialog):
    def __init__(self, attachment: Attachment, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="attachmentViewer")
        self.setWindowTitle(attachment.name)
        self.picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        if attachment.kind is AttachmentKind.IMAGE:
            reader = QImageReader(str(path))
            reader.setAutoTransform(True)
            image = reader.read()
            if image.isNull():
                self.picture.setText(f"{attachment.name} is no longer in {path.parent}.")
            else:
                self.picture.setPixmap(QPixmap.fromImage(image))
        else:
            kind = "PDF" if attachment.kind is AttachmentKind.PDF else "Text file"
            self.picture.setText(f"{kind}, {attachment.size:,} bytes, kept as {path}")
            self.picture.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details = [f"{attachment.width}×{attachment.height} pixels" if attachment.width else "", attachment.note]
        self.details = QLabel(" · ".join(d for d in details if d), wordWrap=True)
        scroll = QScrollArea()
        scroll.setWidget(self.picture)
        scroll.setWidgetResizable(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.details)
        layout.addWidget(buttons)
        self.resize(900, 700)
