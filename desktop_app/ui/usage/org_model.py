"""Tables of what the providers report: usage beside the ledger, costs, and the organisation's keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont

from desktop_app.domain.org_usage import Comparison, OrgKey, ProviderCost
from desktop_app.ui.common.table_model import RowsTableModel
from desktop_app.ui.usage.model import SortRole

PROVIDER_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI"}
NO_KEY = "(no key)"  # usage the provider did not tie to a key: the Console, the Playground


def _accounts(ids: Sequence[str], labels: Mapping[str, str]) -> str:
    return ", ".join(labels.get(i, i) for i in ids) or "—"


class ComparisonModel(RowsTableModel[Comparison]):
    COLUMNS = (
        "Date (UTC)",
        "Provider",
        "API key",
        "Used by",
        "Model",
        "Provider tokens",
        "ModelDesk tokens",
        "Difference",
        "ModelDesk cost (USD)",
    )
    DATE, PROVIDER, KEY, USED_BY, MODEL, PROVIDER_TOKENS, LOCAL_TOKENS, DIFFERENCE, LOCAL_COST = range(9)
    NUMERIC = frozenset({PROVIDER_TOKENS, LOCAL_TOKENS, DIFFERENCE, LOCAL_COST})
    SORT_ROLE = SortRole

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._labels: dict[str, str] = {}

    def set_rows(self, rows: Sequence[Comparison], *, labels: Mapping[str, str]) -> None:
        self._labels = dict(labels)
        self._reset_rows(rows)

    def _display(self, row: Comparison, column: int) -> str:
        if column == self.DATE:
            return row.day
        if column == self.PROVIDER:
            return PROVIDER_NAMES.get(row.provider_id, row.provider_id)
        if column == self.KEY:
            return row.key_name or row.key_id or NO_KEY
        if column == self.USED_BY:
            return _accounts(row.account_ids, self._labels)
        if column == self.MODEL:
            return row.model
        if column == self.PROVIDER_TOKENS:
            return f"{row.provider_tokens:,}"
        if column == self.LOCAL_TOKENS:
            return f"{row.local_tokens:,}"
        if column == self.DIFFERENCE:
            return f"{row.difference:+,}" if row.difference else "0"
        return "—" if row.local_cost_usd is None else f"{row.local_cost_usd:,.4f}"

    def _raw(self, row: Comparison, column: int) -> str | int | float:
        numbers: dict[int, int | float] = {
            self.PROVIDER_TOKENS: row.provider_tokens,
            self.LOCAL_TOKENS: row.local_tokens,
            self.DIFFERENCE: row.difference,
            self.LOCAL_COST: -1.0 if row.local_cost_usd is None else row.local_cost_usd,
        }
        return numbers[column] if column in numbers else self._display(row, column).casefold()

    def _tooltip(self, row: Comparison, column: int) -> str | None:
        if column == self.KEY:
            return (
                f"Key id {row.key_id}"
                if row.key_id
                else "Usage the provider tied to no API key (its console or playground)."
            )
        if column == self.DIFFERENCE and row.difference > 0:
            return "Tokens counted by the provider that ModelDesk did not send with this key: requests made elsewhere."
        if column == self.DIFFERENCE and row.difference < 0:
            return "ModelDesk counted more than the provider: the provider's report may lag, or days differ (UTC vs local)."
        return None

    def _role_data(self, row: Comparison, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.FontRole and column == self.DIFFERENCE and row.difference > 0:
            font = QFont()
            font.setBold(True)
            return font
        return None


class CostModel(RowsTableModel[tuple[str, ProviderCost]]):
    COLUMNS = ("Date (UTC)", "Organisation", "Workspace or project", "Item", "Cost (USD)")
    NUMERIC = frozenset({4})
    SORT_ROLE = SortRole

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._labels: dict[str, str] = {}

    def set_rows(self, rows: Sequence[tuple[str, ProviderCost]], *, labels: Mapping[str, str]) -> None:
        self._labels = dict(labels)
        self._reset_rows(rows)

    def _display(self, row: tuple[str, ProviderCost], column: int) -> str:
        account_id, cost = row
        values = (cost.day, self._labels.get(account_id, account_id), cost.scope_id or "Default", cost.item or "—")
        return values[column] if column < 4 else f"{cost.amount_usd:,.4f}"

    def _raw(self, row: tuple[str, ProviderCost], column: int) -> str | int | float:
        return row[1].amount_usd if column == 4 else self._display(row, column).casefold()


class KeysModel(RowsTableModel[OrgKey]):
    COLUMNS = ("Name", "Provider", "Workspace or project", "Status", "Created", "Key hint", "Used by")
    SORT_ROLE = SortRole

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._labels: dict[str, str] = {}
        self._used_by: dict[str, tuple[str, ...]] = {}

    def set_rows(
        self, rows: Sequence[OrgKey], *, used_by: Mapping[str, tuple[str, ...]], labels: Mapping[str, str]
    ) -> None:
        self._labels = dict(labels)
        self._used_by = dict(used_by)
        self._reset_rows(rows)

    def used_by(self, key: OrgKey) -> tuple[str, ...]:
        return self._used_by.get(key.id, ())

    def _display(self, row: OrgKey, column: int) -> str:
        values = (
            row.name or row.id,
            PROVIDER_NAMES.get(row.provider_id, row.provider_id),
            row.scope_id or "Default",
            row.status,
            row.created,
            row.hint,
            _accounts(self._used_by.get(row.id, ()), self._labels),
        )
        return values[column]

    def _raw(self, row: OrgKey, column: int) -> str | int | float:
        return self._display(row, column).casefold()

    def _tooltip(self, row: OrgKey, column: int) -> str | None:
        if column == 6:
            return "Local accounts whose stored key has this key's visible start and end."
        return f"Key id {row.id}" if column == 0 else None
