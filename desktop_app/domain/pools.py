"""Pools: one model name served by several accounts of one provider, with failover."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from desktop_app.domain.text import without_bidi_controls

POOL_PREFIX = "pool:"  # pool ids live in the same namespace as account ids in the picker


class Strategy(StrEnum):
    FAILOVER = "failover"  # always start with the first account; move on when it cannot answer
    ROUND_ROBIN = "round_robin"  # start with the next account each time, spreading the load


def new_pool_id() -> str:
    return POOL_PREFIX + uuid.uuid4().hex[:10]


def is_pool_id(target_id: str) -> bool:
    return target_id.startswith(POOL_PREFIX)


class Pool(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_pool_id)
    label: str
    provider_id: str
    account_ids: tuple[str, ...] = ()
    strategy: Strategy = Strategy.FAILOVER

    @field_validator("id")
    @classmethod
    def _prefixed(cls, value: str) -> str:
        if not is_pool_id(value):
            raise ValueError("a pool id starts with “pool:”")
        return value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = without_bidi_controls(value).strip()
        if not value:
            raise ValueError("a pool needs a name")
        return value
