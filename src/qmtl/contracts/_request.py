"""The request body shared by plan, apply and execute (SPEC 2.1, 2.2)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)

from ._types import (
    FiniteFloat,
    Identifier,
    NonNegativeFloat,
    PositiveFloat,
    Ratio,
    SchemaVersion,
    StrategyId,
    Symbol,
    WorldId,
)

__all__ = [
    "AlphaSeries",
    "MultiWorldRebalanceRequest",
    "MultiWorldRebalanceRequestV1",
    "OverlayConfig",
    "PositionSlice",
    "RebalanceIntent",
    "RebalanceMode",
    "Series",
    "V2_REQUEST_FIELDS",
    "ratio_total_over_one",
]

RATIO_SUM_TOLERANCE = 1e-9
"""Allocation maps may exceed 1 by this much (float noise from the caller's arithmetic)."""


class RebalanceMode(StrEnum):
    """How a plan moves exposure: scale the positions, trade an overlay, or both."""

    SCALING = "scaling"
    OVERLAY = "overlay"
    HYBRID = "hybrid"


class _WireModel(BaseModel):
    # Tolerant reader: unknown fields are ignored; every number must be finite.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class PositionSlice(_WireModel):
    """One strategy's holding of one symbol at one venue.

    ``qty`` is signed (negative = short) in units of the instrument; ``mark`` is the
    price in base currency per unit and must be > 0. The netting key is (venue, symbol).
    """

    world_id: WorldId
    strategy_id: StrategyId
    symbol: Symbol
    qty: FiniteFloat
    mark: PositiveFloat
    venue: Identifier | None = None


def _finite_json(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` unchanged when every number in it, at any depth, is finite.

    Iterative (no recursion limit to hit); the JSON parser already bounds the depth.

    :raises ValueError: naming the path of the first NaN/Infinity (``meta.a[0].b``).
    """
    stack: list[tuple[str, Any]] = [("meta", meta)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{path} is {value!r}: every number on the wire must be finite")
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return meta


def _null_as(default: Callable[[], Any]) -> AfterValidator:
    return AfterValidator(lambda value: default() if value is None else value)


# Every optional field accepts null, meaning absent (SPEC 2: older clients serialise unset
# fields as null). The wire types below accept null and validate it to the field's default,
# so a validated model never holds None there: mypy sees the non-null type.
if TYPE_CHECKING:
    _Positions = list[PositionSlice]
    _Mode = RebalanceMode
    _InstrumentMap = dict[WorldId, Symbol]
    _PriceMap = dict[Symbol, PositiveFloat]
    _MinOrderNotional = float
    _Meta = dict[str, Any]
    _SeriesByWorld = dict[WorldId, "Series"]
    _SeriesByStrategy = dict[StrategyId, dict[WorldId, "Series"]]
else:
    _Positions = Annotated[list[PositionSlice] | None, _null_as(list)]
    _Mode = Annotated[RebalanceMode | None, _null_as(lambda: RebalanceMode.SCALING)]
    _InstrumentMap = Annotated[dict[WorldId, Symbol] | None, _null_as(dict)]
    _PriceMap = Annotated[dict[Symbol, PositiveFloat] | None, _null_as(dict)]
    _MinOrderNotional = Annotated[NonNegativeFloat | None, _null_as(float)]
    # Responses echo the intent: never null there (the serialised schema says so).
    _Meta = Annotated[dict[str, Any] | None, _null_as(dict), AfterValidator(_finite_json),
                      PlainSerializer(lambda meta: meta, return_type=dict[str, Any])]
    _SeriesByWorld = Annotated[dict[WorldId, "Series"] | None, _null_as(dict)]
    _SeriesByStrategy = Annotated[dict[StrategyId, dict[WorldId, "Series"]] | None,
                                  _null_as(dict)]


class OverlayConfig(_WireModel):
    """Where each world's overlay trades and at what price."""

    instrument_by_world: _InstrumentMap = Field(default_factory=dict)
    price_by_symbol: _PriceMap = Field(default_factory=dict)
    min_order_notional: _MinOrderNotional = 0.0


class RebalanceIntent(BaseModel):
    """Caller metadata echoed by v2 responses and events (ticket, rollout label...).

    ``meta`` is free-form JSON, but its numbers must be finite at any depth (SPEC 2).
    """

    model_config = ConfigDict(extra="ignore")

    meta: _Meta = Field(default_factory=dict)


class Series(_WireModel):
    """Raw data for alpha metrics: simple periodic returns, or P&L, or an equity curve.

    Lists may contain ``null`` (dropped, not counted); ±Infinity is rejected.
    """

    returns: list[FiniteFloat | None] | None = None
    pnl: list[FiniteFloat | None] | None = None
    equity: list[FiniteFloat | None] | None = None


class AlphaSeries(_WireModel):
    per_world: _SeriesByWorld = Field(default_factory=dict)
    per_strategy: _SeriesByStrategy = Field(default_factory=dict)


def ratio_total_over_one(ratios: Iterable[float]) -> float | None:
    """The exact sum of ``ratios`` when it is more than 1 beyond float noise, else ``None``."""
    total = math.fsum(ratios)
    return total if total > 1 + RATIO_SUM_TOLERANCE else None


def check_ratio_sum(name: str, ratios: dict[str, float] | None) -> None:
    total = ratio_total_over_one(ratios.values()) if ratios else None
    if total is not None:
        raise ValueError(f"{name} ratios sum to {total:.12g}, more than 1")


class MultiWorldRebalanceRequestV1(_WireModel):
    """The v1 request: everything a scaling or overlay plan needs."""

    total_equity: NonNegativeFloat
    world_alloc_before: dict[WorldId, Ratio] | None = None
    world_alloc_after: dict[WorldId, Ratio]
    positions: _Positions = Field(default_factory=list)
    strategy_alloc_before_total: dict[WorldId, dict[StrategyId, NonNegativeFloat]] | None = None
    strategy_alloc_after_total: dict[WorldId, dict[StrategyId, NonNegativeFloat]] | None = None
    min_trade_notional: NonNegativeFloat | None = None
    lot_size_by_symbol: dict[Symbol, PositiveFloat] | None = None
    mode: _Mode = RebalanceMode.SCALING
    overlay: OverlayConfig | None = None
    run_id: Identifier | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_case_insensitive(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower()
        return value

    @field_validator("world_alloc_before", "world_alloc_after")
    @classmethod
    def _ratios_sum_to_at_most_one(
        cls, value: dict[str, float] | None, info: ValidationInfo
    ) -> dict[str, float] | None:
        check_ratio_sum(str(info.field_name), value)
        return value


class MultiWorldRebalanceRequest(MultiWorldRebalanceRequestV1):
    """The v2 request: v1 plus the version, caller intent and raw alpha data.

    ``schema_version`` null or absent means 1.
    """

    schema_version: SchemaVersion | None = None
    rebalance_intent: RebalanceIntent | None = None
    alpha_series: AlphaSeries | None = None

    @property
    def requested_version(self) -> int:
        return self.schema_version or 1


V2_REQUEST_FIELDS: frozenset[str] = frozenset(
    set(MultiWorldRebalanceRequest.model_fields) - set(MultiWorldRebalanceRequestV1.model_fields)
)
"""Keys a v1-only WorldService does not know; dropped when falling back to v1."""
