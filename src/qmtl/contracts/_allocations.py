"""Allocation state kept by the WorldService (the next plan's "before")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ._request import check_ratio_sum
from ._types import Identifier, NonNegativeFloat, Ratio, StrategyId, WorldId

__all__ = ["AllocationState", "AllocationUpsert", "WorldAllocation"]


class AllocationUpsert(BaseModel):
    """``POST /allocations``: set world ratios (and optionally strategy ratios of total)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    run_id: Identifier | None = None
    world_alloc: dict[WorldId, Ratio]
    strategy_alloc_total: dict[WorldId, dict[StrategyId, NonNegativeFloat]] | None = None

    @field_validator("world_alloc")
    @classmethod
    def _sum_at_most_one(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        check_ratio_sum(str(info.field_name), value)
        return value


class WorldAllocation(BaseModel):
    world_id: WorldId
    ratio: Ratio
    strategy_alloc_total: dict[StrategyId, NonNegativeFloat] | None = None
    updated_at: datetime


class AllocationState(BaseModel):
    """The stored allocations and the etag to send back in ``If-Match``."""

    worlds: dict[WorldId, WorldAllocation] = Field(default_factory=dict)
    etag: str
    run_id: Identifier | None = None
