"""Qt models of the Discover pane: search hits, a repo's files with their fit, and the downloads.

Downloads reuse the Ollama pane's pull list (`PullJobsModel` painted by `PullJobDelegate`): a Hub
download reports the same `PullProgress`, keyed by "owner/name/file.gguf"; only the words and the
buttons differ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from desktop_app.domain.hub import Fit, FitVerdict, HubRepo, QuantFile
from desktop_app.domain.ollama import PullProgress, PullState, format_bytes, format_duration, format_rate
from desktop_app.ui.common.table_model import RowsTableModel
from desktop_app.ui.ollama.delegate import PullJobDelegate
from desktop_app.ui.ollama.models import PullJobsModel
from desktop_app.ui.theme import colours

SortRole = Qt.ItemDataRole.UserRole
GATED_TIP = (
    "Its authors ask you to accept their terms on Hugging Face first; downloading it needs a "
    "Hugging Face token (add a Hugging Face account in Accounts)."
)
BADGES = {Fit.GPU: "Fits on the GPU", Fit.CPU: "Runs on CPU", Fit.TOO_BIG: "Too big"}
_TONES = {Fit.GPU: "ok", Fit.CPU: "warning", Fit.TOO_BIG: "error"}


def count(value: int) -> str:
    """12,345 downloads as "12.3k", 1,234,567 as "1.2M"."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def access(repo: HubRepo) -> str:
    if repo.private:
        return "Private"
    return "Gated" if repo.is_gated else ""


class ReposModel(RowsTableModel[HubRepo]):
    """One row per search hit, in the order the Hub sorted them."""

    COLUMNS = ("Model", "Downloads", "Likes", "Licence", "Updated", "Access")
    MODEL, DOWNLOADS, LIKES, LICENCE, UPDATED, ACCESS = range(6)
    NUMERIC = frozenset({DOWNLOADS, LIKES})

    def set_repos(self, repos: list[HubRepo]) -> None:
        self._reset_rows(repos)

    def _display(self, row: HubRepo, column: int) -> str:
        return (
            row.id,
            count(row.downloads),
            count(row.likes),
            row.license or "—",
            row.last_modified[:10] or "—",
            access(row),
        )[column]

    def _tooltip(self, row: HubRepo, column: int) -> str | None:
        if column == self.ACCESS and row.is_gated:
            return GATED_TIP
        if column in (self.DOWNLOADS, self.LIKES):
            return f"{row.downloads:,} downloads, {row.likes:,} likes"
        return row.id if column == self.MODEL else None

    def _role_data(self, row: HubRepo, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.ForegroundRole and column == self.ACCESS and row.is_gated:
            return QColor(colours().warning)
        return None


@dataclass(frozen=True, slots=True)
class FileRow:
    """One model file of the repo shown: its verdict once the header and the hardware are known,
    and where it is on disk once downloaded."""

    quant: QuantFile
    verdict: FitVerdict | None = None
    local: Path | None = None


def verdict_numbers(verdict: FitVerdict) -> str:
    """ "0.9 GB of 8.6 GB VRAM" from the verdict's sentence: the part after its badge, without the
    context length (the Hardware box shows it)."""
    numbers = verdict.text.partition(": ")[2] or verdict.text
    return numbers.replace(f" at {verdict.context:,} tokens", "").rstrip(".")


class QuantFilesModel(RowsTableModel[FileRow]):
    """The repo's GGUF models (split parts as one), smallest first, with a fit badge and the numbers."""

    COLUMNS = ("File", "Quantisation", "Size", "Fit", "Memory needed", "On disk")
    FILE, QUANTISATION, SIZE, FIT, MEMORY, LOCAL = range(6)
    NUMERIC = frozenset({SIZE})

    def set_files(self, rows: list[FileRow]) -> None:
        self._reset_rows(rows)

    def set_verdicts(self, verdicts: list[FitVerdict] | None) -> None:
        """New verdicts (another context length, the hardware found): rows changed in place, the
        selection kept."""
        for row, file in enumerate(self._rows):
            self._rows[row] = replace(file, verdict=verdicts[row] if verdicts else None)
            self._row_changed(row)

    def set_local(self, name: str, path: Path | None) -> None:
        for row, file in enumerate(self._rows):
            if file.quant.name == name:
                self._rows[row] = replace(file, local=path)
                self._row_changed(row)

    def quants(self) -> list[QuantFile]:
        return [row.quant for row in self._rows]

    def _display(self, row: FileRow, column: int) -> str:
        quant = row.quant
        if column == self.FILE:
            return quant.name + (f" ({len(quant.parts)} parts)" if quant.is_split else "")
        if column == self.QUANTISATION:
            return quant.quantisation or "—"
        if column == self.SIZE:
            return format_bytes(quant.size)
        if column == self.FIT:
            return BADGES[row.verdict.fit] if row.verdict is not None else "—"
        if column == self.MEMORY:
            return verdict_numbers(row.verdict) if row.verdict is not None else "—"
        return "Downloaded" if row.local is not None else ""

    def _tooltip(self, row: FileRow, column: int) -> str | None:
        if column in (self.FIT, self.MEMORY) and row.verdict is not None:
            estimate = row.verdict.estimate
            return (
                f"{row.verdict.text}\nWeights {format_bytes(estimate.weights)} + KV cache "
                f"{format_bytes(estimate.kv_cache)} + about {format_bytes(estimate.overhead)} for llama.cpp itself."
            )
        if column == self.FILE and row.quant.is_split:
            return "\n".join(part.path for part in row.quant.parts)
        if column == self.LOCAL and row.local is not None:
            return str(row.local)
        return None

    def _role_data(self, row: FileRow, column: int, role: int) -> Any:
        if column != self.FIT or row.verdict is None:
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(getattr(colours(), _TONES[row.verdict.fit]))
        if role == Qt.ItemDataRole.FontRole:
            bold = QFont()
            bold.setBold(True)
            return bold
        return None


# --- downloads --------------------------------------------------------------------------------------


def download_headline(progress: PullProgress) -> str:
    if progress.state is PullState.RETRYING:
        wait = f" in {progress.retry_in_s:g} s" if progress.retry_in_s else ""
        return f"Connection lost, retrying{wait}"
    if progress.state is PullState.DONE:
        return "Downloaded"
    if progress.state is PullState.CANCELLED:
        return "Paused"
    if progress.state is PullState.FAILED:
        return "Failed"
    if progress.completed or progress.status in ("downloading", "present"):
        return f"Downloading {int(progress.fraction * 100)}%"
    return "Starting"


def download_detail(progress: PullProgress) -> str:
    """Bytes, speed and time left; or what went wrong, in one sentence and what to do."""
    if progress.state is PullState.FAILED and progress.error is not None:
        return f"{progress.error.message} {progress.error.action}".strip()
    sizes = f"{format_bytes(progress.completed)} of {format_bytes(progress.total)}" if progress.total else ""
    if progress.state is PullState.DONE:
        return f"{format_bytes(progress.total)}, listed in GGUF files; Run starts it"
    if progress.state is PullState.CANCELLED:
        return f"{sizes or 'Nothing'} kept on disk; Resume continues from there"
    parts = [sizes or "size not known yet"]
    if progress.state is PullState.RUNNING and progress.bytes_per_s > 0:
        parts.append(format_rate(progress.bytes_per_s))
        if progress.eta_s is not None:
            parts.append(f"{format_duration(progress.eta_s)} left")
    return " · ".join(parts)


class DownloadsModel(PullJobsModel):
    """One row per Hugging Face download of this session, or paused from an earlier one."""

    headline = staticmethod(download_headline)
    detail = staticmethod(download_detail)


class DownloadDelegate(PullJobDelegate):
    """A download's row: Cancel while it runs (what it fetched is kept), Resume, Retry, Run when done."""

    LABELS: ClassVar[dict[str, str]] = {**PullJobDelegate.LABELS, "run": "Run"}
    headline = staticmethod(download_headline)
    detail = staticmethod(download_detail)

    @staticmethod
    def actions_for(progress: PullProgress) -> tuple[str, ...]:
        if progress.state is PullState.DONE:
            return ("run", "remove")
        return PullJobDelegate.actions_for(progress)
