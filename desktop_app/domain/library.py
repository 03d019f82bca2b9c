"""Conversations taken out of ModelDesk and brought back in: the file formats' names and limits, and
the one error an import can end with (said in one sentence; nothing was imported)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from desktop_app.domain.errors import DomainError, domain_error

FORMAT_NAME = "modeldesk-conversations"
FORMAT_VERSION = 1  # the ModelDesk JSON this build writes, and the newest it reads
MAX_IMPORT_BYTES = 200_000_000  # a bigger file is refused before any of it is read
SCHEMA_FILE = "modeldesk-conversations.schema.json"  # in desktop_app/resources


class ExportFormat(StrEnum):
    JSON = "json"  # ModelDesk JSON: every message of every branch, lossless
    MARKDOWN = "markdown"  # the branch shown, to read

    @property
    def suffix(self) -> str:
        return ".json" if self is ExportFormat.JSON else ".md"


@domain_error
class ImportRefused(DomainError):
    """A file that cannot be imported; `cause` is "too_large", "unreadable", "not_utf8", "truncated",
    "not_json", "newer_version" or "wrong_shape"."""

    cause: str = ""


@dataclass(frozen=True, slots=True)
class ImportResult:
    conversation_ids: tuple[int, ...]  # the new conversations, in the file's order
    messages: int
