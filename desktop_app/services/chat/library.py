"""The conversation library's way out and in: export to a file, import from one (see
`library_export` and `library_import`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from desktop_app.domain.library import ExportFormat, ImportResult
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.library_export import write_export
from desktop_app.services.chat.library_import import import_file


class ConversationLibrary:
    def __init__(self, *, store: ConversationStore, attachments: AttachmentStore | None) -> None:
        self._store = store
        self._attachments = attachments

    async def export(self, path: Path, fmt: ExportFormat, conversation_ids: Sequence[int] | None = None) -> int:
        """Write the conversations (all when None) to `path`; how many. OSError or StorageFailed."""
        return await write_export(self._store, self._attachments, path, fmt, conversation_ids)

    async def import_file(self, path: Path) -> ImportResult:
        """Add the file's conversations as new ones, all or none. ImportRefused or StorageFailed."""
        return await import_file(self._store, self._attachments, path)
