"""A comparison: the same turns sent to 2 to 4 targets side by side, each in a column of its own.

Stored with its conversation; a column's messages carry its lane (1..4), shared turns lane 0.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.chat import ChatParams

MIN_COLUMNS = 2
MAX_COLUMNS = 4


class CompareColumn(BaseModel):
    """One column's target, and the parameters it unlinked from the conversation's."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    model: str
    overrides: dict[str, Any] = Field(default_factory=dict)  # ChatParams fields this column sets itself

    @field_validator("overrides")
    @classmethod
    def _only_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - set(ChatParams.model_fields)
        if unknown:
            raise ValueError(f"not a parameter: {', '.join(sorted(unknown))}")
        return value

    def params(self, shared: ChatParams) -> ChatParams:
        """The parameters this column sends: the shared ones with its own on top (validated)."""
        if not self.overrides:
            return shared
        return ChatParams.model_validate({**shared.model_dump(), **self.overrides})


class CompareSetup(BaseModel):
    model_config = ConfigDict(frozen=True)

    columns: tuple[CompareColumn, ...] = Field(min_length=MIN_COLUMNS, max_length=MAX_COLUMNS)
    blind: bool = False  # columns are labelled A, B, C... until the user votes

    def lanes(self) -> range:
        """The lanes of the columns, in order (lane k is column k - 1)."""
        return range(1, len(self.columns) + 1)
