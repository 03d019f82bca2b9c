"""Qt models over what OllamaService reports: installed models, running models, pull jobs.

Each is a plain table/list model over service-owned values; views sort and filter them through a
QSortFilterProxyModel using `SortRole` (the raw value), never by parsing display text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from desktop_app.domain.ollama import (
    InstalledModel,
    PullProgress,
    PullState,
    RunningModel,
    format_bytes,
    format_duration,
    format_rate,
)
from desktop_app.ui.common.table_model import RowsTableModel

# The raw value to sort by. Byte counts go out as float: an int between 2**31 and 2**32 crosses
# into Qt as an unsigned int, which QSortFilterProxyModel then orders wrongly against signed ones.
SortRole = Qt.ItemDataRole.UserRole
NameRole = Qt.ItemDataRole.UserRole + 1  # the model's name, whatever the column
ProgressRole = Qt.ItemDataRole.UserRole + 2  # a pull's PullProgress

_Index = QModelIndex | QPersistentModelIndex
UNKNOWN = "—"


def _now() -> datetime:
    return datetime.now(UTC)


def relative_age(moment: datetime | None, now: datetime) -> str:
    """ "3 days ago", like `ollama list` says it."""
    if moment is None:
        return UNKNOWN
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (
        ("year", 365 * 86400),
        ("month", 30 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def time_left(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return UNKNOWN
    seconds = (moment - now).total_seconds()
    if seconds > 100 * 365 * 86400:
        return "forever"
    if seconds <= 0:
        return "now"
    if seconds < 60:
        return "in under a minute"
    # Whole minutes: the text then stays put between refreshes (and within its column's width).
    return f"in {format_duration(math.ceil(seconds / 60) * 60)}"


def processor(model: RunningModel) -> str:
    """Where the weights sit, as `ollama ps` prints it: 100% GPU, 100% CPU or 48%/52% CPU/GPU."""
    gpu = round(model.gpu_share * 100)
    if gpu >= 100:
        return "100% GPU"
    if gpu <= 0:
        return "100% CPU"
    return f"{100 - gpu}%/{gpu}% CPU/GPU"


_Row = TypeVar("_Row", InstalledModel, RunningModel)


class _TableModel(RowsTableModel[_Row]):
    """One row per model, its name under `NameRole` in every column; ages and times left count
    from `now`."""

    SORT_ROLE = SortRole

    def __init__(self, parent: Any = None, *, now: Callable[[], datetime] = _now) -> None:
        super().__init__(parent)
        self._now = now

    def set_rows(self, rows: Sequence[_Row]) -> None:
        rows = list(rows)
        if rows == self._rows:
            return  # a refresh that changed nothing keeps the selection and the scroll position
        self._reset_rows(rows)

    def names(self) -> list[str]:
        return [row.name for row in self._rows]

    def _role_data(self, row: _Row, column: int, role: int) -> Any:
        return row.name if role == NameRole else None


EMBEDDINGS_ONLY = "Embeddings only"
EMBEDDINGS_TIP = "An embedding model turns text into vectors for search; it cannot chat."


def model_use(model: InstalledModel) -> str:
    """What the model is for, from Ollama's capabilities: "Chat", "Embeddings only", or unknown."""
    if not model.capabilities:
        return UNKNOWN
    if model.can_chat:
        return "Chat"
    return EMBEDDINGS_ONLY if "embedding" in model.capabilities else ", ".join(model.capabilities)


class InstalledModelsModel(_TableModel[InstalledModel]):
    COLUMNS = ("Name", "Family", "Parameters", "Quantization", "Size", "Modified", "Use")
    NAME, FAMILY, PARAMETERS, QUANTIZATION, SIZE, MODIFIED, USE = range(7)
    NUMERIC = frozenset({SIZE})

    def _display(self, row: InstalledModel, column: int) -> str:
        if column == self.NAME:
            return row.name
        if column == self.USE:
            return model_use(row)
        if column == self.FAMILY:
            return row.family or UNKNOWN
        if column == self.PARAMETERS:
            return row.parameter_size or UNKNOWN
        if column == self.QUANTIZATION:
            return row.quantization or UNKNOWN
        if column == self.SIZE:
            return format_bytes(row.size)
        return relative_age(row.modified, self._now())

    def _raw(self, row: InstalledModel, column: int) -> str | int | float:
        if column == self.NAME:
            return row.name.casefold()
        if column == self.FAMILY:
            return row.family.casefold()
        if column == self.PARAMETERS:
            return _parameter_count(row.parameter_size)
        if column == self.QUANTIZATION:
            return row.quantization.casefold()
        if column == self.SIZE:
            return float(row.size)
        if column == self.USE:
            return model_use(row).casefold()
        return row.modified.timestamp() if row.modified else 0.0

    def _tooltip(self, row: InstalledModel, column: int) -> str | None:
        if not row.can_chat and column in (self.NAME, self.USE):
            return EMBEDDINGS_TIP if "embedding" in row.capabilities else "Ollama says this model cannot chat."
        if column == self.SIZE:
            return f"{row.size:,} bytes"
        if column == self.MODIFIED and row.modified is not None:
            return row.modified.astimezone().strftime("%Y-%m-%d %H:%M")
        if column == self.NAME and row.digest:
            return f"{row.name}\nDigest {row.digest[:12]}"
        return None


def _parameter_count(text: str) -> float:
    """ "1.2B" -> 1.2e9, "494.03M" -> 4.9403e8; unknown sorts first."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    text = text.strip().upper()
    try:
        return float(text[:-1]) * scale[text[-1]] if text and text[-1] in scale else float(text)
    except ValueError:
        return 0.0


class RunningModelsModel(_TableModel[RunningModel]):
    COLUMNS = ("Name", "Size", "VRAM", "Processor", "Until")
    NAME, SIZE, VRAM, PROCESSOR, UNTIL = range(5)
    NUMERIC = frozenset({SIZE, VRAM})

    def _display(self, row: RunningModel, column: int) -> str:
        if column == self.NAME:
            return row.name
        if column == self.SIZE:
            return format_bytes(row.size)
        if column == self.VRAM:
            return format_bytes(row.size_vram) if row.size_vram else "—"
        if column == self.PROCESSOR:
            return processor(row)
        return time_left(row.expires_at, self._now())

    def _raw(self, row: RunningModel, column: int) -> str | int | float:
        if column == self.NAME:
            return row.name.casefold()
        if column == self.SIZE:
            return float(row.size)
        if column == self.VRAM:
            return float(row.size_vram)
        if column == self.PROCESSOR:
            return row.gpu_share
        return row.expires_at.timestamp() if row.expires_at else 0.0

    def _tooltip(self, row: RunningModel, column: int) -> str | None:
        if column == self.UNTIL and row.expires_at is not None:
            return f"Ollama unloads it at {row.expires_at.astimezone().strftime('%H:%M:%S')} unless it is used."
        if column == self.SIZE and row.context_length:
            return f"Context window {row.context_length:,} tokens"
        return None


def job_headline(progress: PullProgress) -> str:
    """What the pull is doing, in a few words."""
    if progress.state is PullState.RETRYING:
        wait = f" in {progress.retry_in_s:g} s" if progress.retry_in_s else ""
        return f"Connection lost, retrying{wait}"
    if progress.state is PullState.DONE:
        return "Done"
    if progress.state is PullState.CANCELLED:
        return "Paused"
    if progress.state is PullState.FAILED:
        return "Failed"
    status = progress.status
    if status == "pulling manifest":
        return "Fetching manifest"
    if status.startswith("pulling "):
        return f"Downloading {round(progress.fraction * 100)}%"
    if status.startswith("verifying"):
        return "Verifying"
    if status in ("writing manifest", "removing unused layers", "removing any unused layers"):
        return "Finishing"
    return "Starting"


def job_detail(progress: PullProgress) -> str:
    """Bytes, speed, time left and layers; or what went wrong, in one sentence."""
    if progress.state is PullState.FAILED and progress.error is not None:
        return progress.error.message
    sizes = (
        f"{format_bytes(progress.completed)} of {format_bytes(progress.total)}"
        if progress.total
        else "size not known yet"
    )
    if progress.state is PullState.DONE:
        return f"{format_bytes(progress.total)} pulled, {len(progress.layers)} layers"
    if progress.state is PullState.CANCELLED:
        return f"{sizes} kept on disk; Resume continues from there"
    parts = [sizes]
    if progress.state is PullState.RUNNING and progress.bytes_per_s > 0:
        parts.append(format_rate(progress.bytes_per_s))
        if progress.eta_s is not None:
            parts.append(f"{format_duration(progress.eta_s)} left")
    if progress.layers:
        # Ollama names the layers one by one, so how many there are is known only at the end.
        parts.append(f"layer {len(progress.layers)}")
    return " · ".join(parts)


class PullJobsModel(QAbstractListModel):
    """One row per pull (running, paused or finished), updated in place as snapshots arrive."""

    headline = staticmethod(job_headline)  # how a row is worded (Hugging Face downloads differ)
    detail = staticmethod(job_detail)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[PullProgress] = []
        self._row_of: dict[str, int] = {}
        self.updates = 0  # rows repainted because of new snapshots (the benchmark counts them)

    def update(self, progress: PullProgress) -> None:
        """Add the pull's row or replace it: O(1) per snapshot."""
        row = self._row_of.get(progress.model)
        if row is None:
            row = len(self._rows)
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.append(progress)
            self._row_of[progress.model] = row
            self.endInsertRows()
        else:
            self._rows[row] = progress
            index = self.index(row, 0)
            self.dataChanged.emit(index, index)
        self.updates += 1

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._row_of.clear()
        self.endResetModel()

    def remove(self, name: str) -> None:
        row = self._row_of.get(name)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._row_of = {p.model: i for i, p in enumerate(self._rows)}
        self.endRemoveRows()

    def progress_of(self, name: str) -> PullProgress | None:
        row = self._row_of.get(name)
        return self._rows[row] if row is not None else None

    def names(self) -> list[str]:
        return [p.model for p in self._rows]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.checkIndex(index, QAbstractListModel.CheckIndexOption.IndexIsValid):
            return None
        progress = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, NameRole):
            return progress.model
        if role == ProgressRole:
            return progress
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{progress.model}: {self.headline(progress)}. {self.detail(progress)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            if progress.error is not None:
                said = f"\nOllama said: {progress.detail}" if progress.detail else ""
                return f"{progress.error.message} {progress.error.action}".strip() + said
            return self.detail(progress)
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
