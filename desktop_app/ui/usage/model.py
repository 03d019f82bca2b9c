"""Daily usage totals as a table: one row per day, account and model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from desktop_app.domain.usage import DailyUsage
from desktop_app.ui.common.table_model import RowsTableModel
from desktop_app.ui.usage.chart import REMOVED_LABEL

SortRole = Qt.ItemDataRole.UserRole  # the raw value (str, int or float) to sort by
AccountIdRole = Qt.ItemDataRole.UserRole + 1

COLUMNS = (
    "Date",
    "Account",
    "Model",
    "Requests",
    "Prompt tokens",
    "Completion tokens",
    "Cost (USD)",
    "Cache read / written",
)
DATE, ACCOUNT, MODEL, REQUESTS, PROMPT, COMPLETION, COST, CACHE = range(len(COLUMNS))
UNKNOWN = "—"


class UsageTableModel(RowsTableModel[DailyUsage]):
    COLUMNS = COLUMNS
    NUMERIC = frozenset({REQUESTS, PROMPT, COMPLETION, COST, CACHE})
    SORT_ROLE = SortRole

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._labels: dict[str, str] = {}
        self._colours: dict[str, QColor] = {}

    def set_rows(self, rows: Sequence[DailyUsage], *, labels: Mapping[str, str], colours: Mapping[str, QColor]) -> None:
        """Show `rows`; `labels` and `colours` say how each account id is shown."""
        self._labels = dict(labels)
        self._colours = dict(colours)
        self._reset_rows(rows)

    # --- reading -------------------------------------------------------------------------------

    def _role_data(self, row: DailyUsage, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DecorationRole and column == ACCOUNT:
            return self._colours.get(row.account_id)
        if role == AccountIdRole:
            return row.account_id
        return None

    def _tooltip(self, row: DailyUsage, column: int) -> str | None:
        if column == ACCOUNT:
            return f"Account id {row.account_id}"
        if column == COST and row.cost_usd is not None:
            return f"${row.cost_usd:.8f}"
        if column == COST:
            return "The provider reported no price for these requests."
        if column == CACHE:
            return (
                "Prompt tokens read from the provider's prompt cache (billed at its lower cache price) / written"
                " to it; both are part of the prompt tokens."
            )
        return None

    def _label(self, account_id: str) -> str:
        return self._labels.get(account_id) or REMOVED_LABEL

    def _display(self, row: DailyUsage, column: int) -> str:
        if column == DATE:
            return row.day
        if column == ACCOUNT:
            return self._label(row.account_id)
        if column == MODEL:
            return row.model
        if column == REQUESTS:
            return f"{row.requests:,}"
        if column == PROMPT:
            return f"{row.prompt_tokens:,}"
        if column == COMPLETION:
            return f"{row.completion_tokens:,}"
        if column == CACHE:
            used = row.cache_read_tokens or row.cache_write_tokens
            return f"{row.cache_read_tokens:,} / {row.cache_write_tokens:,}" if used else ""
        return UNKNOWN if row.cost_usd is None else f"{row.cost_usd:,.4f}"

    def _raw(self, row: DailyUsage, column: int) -> str | int | float:
        if column == DATE:
            return row.day
        if column == ACCOUNT:
            return self._label(row.account_id).casefold()
        if column == MODEL:
            return row.model.casefold()
        if column == REQUESTS:
            return row.requests
        if column == PROMPT:
            return row.prompt_tokens
        if column == COMPLETION:
            return row.completion_tokens
        if column == CACHE:
            return row.cache_read_tokens
        return -1.0 if row.cost_usd is None else row.cost_usd  # unknown sorts below free
