"""Routes: one name the picker shows, with an ordered list of targets across providers and local servers.

A target is an account or a pool plus a model. A request to a route tries the targets in order and
moves on when one cannot answer before any text (services/chat/routes.py says when).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.text import without_bidi_controls

ROUTE_PREFIX = "route:"  # route ids live in the same namespace as account and pool ids in the picker


def new_route_id() -> str:
    return ROUTE_PREFIX + uuid.uuid4().hex[:10]


def is_route_id(target_id: str) -> bool:
    return target_id.startswith(ROUTE_PREFIX)


class RouteTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    target_id: str  # an account id or a pool id
    model: str

    @field_validator("target_id", "model")
    @classmethod
    def _filled(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a route target needs an account or pool and a model")
        if is_route_id(value):
            raise ValueError("a route cannot contain another route")
        return value


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_route_id)
    label: str
    targets: tuple[RouteTarget, ...] = ()

    @field_validator("id")
    @classmethod
    def _prefixed(cls, value: str) -> str:
        if not is_route_id(value):
            raise ValueError("a route id starts with “route:”")
        return value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = without_bidi_controls(value).strip()
        if not value:
            raise ValueError("a route needs a name")
        return value

    def uses(self, target_id: str) -> bool:
        return any(t.target_id == target_id for t in self.targets)

    def summary(self, label_of: Callable[[str], str]) -> str:
        """The line under the picker: the targets in the order they are tried, e.g. "Route: Laptop
        (gemma) → Claude API (claude-sonnet-4-5); the first that answers replies". `label_of` names
        an account or pool ("" when it is gone)."""
        if not self.targets:
            return "Route with no targets: add one in Accounts > Routes."
        steps = " → ".join(f"{label_of(t.target_id) or 'a removed account'} ({t.model})" for t in self.targets)
        if len(self.targets) == 1:
            return f"Route: {steps}"
        return f"Route: {steps}; the first that answers replies"
