"""Orders and the execute response (SPEC 4)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._response import OverlayDelta
from ._types import FiniteFloat, Identifier, SchemaVersion, StrategyId, Symbol, WorldId

__all__ = [
    "CrossedQty",
    "ExecuteResponse",
    "Order",
    "OrderSide",
    "SharedAccountSummary",
    "TimeInForce",
]

OrderSide = Literal["buy", "sell"]
TimeInForce = Literal["GTC", "IOC", "FOK", "DAY"]


def _is_none(value: object) -> bool:
    return value is None


class Order(BaseModel):
    """One order: ``quantity`` is signed (+ buys) and agrees with ``side``."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    symbol: Symbol
    quantity: FiniteFloat
    side: OrderSide
    time_in_force: TimeInForce
    venue: Identifier | None = Field(default=None, exclude_if=_is_none)
    reduce_only: bool | None = Field(default=None, exclude_if=_is_none)
    client_order_id: Identifier


class CrossedQty(BaseModel):
    """Quantity a world's netting cancels between its strategies at one key (units, >= 0).

    ``crossed_qty = (sum_s |m_s| - |sum_s m_s|) / 2`` over the strategies' own orders
    ``m_s`` at (venue, symbol): 0 when they all trade the same way, ``q`` when one buys
    ``q`` that another sells.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    symbol: Symbol
    venue: Identifier | None = Field(default=None, exclude_if=_is_none)
    crossed_qty: FiniteFloat = Field(ge=0)


class SharedAccountSummary(BaseModel):
    """The figures a shared-account check computed (base currency; headroom is a ratio)."""

    gross_notional: FiniteFloat
    net_notional: FiniteFloat
    margin_headroom: FiniteFloat


class ExecuteResponse(BaseModel):
    """What ``POST /rebalancing/execute`` returns."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    orders_per_world: dict[WorldId, list[Order]]
    orders_global: list[Order] | None = Field(default=None, exclude_if=_is_none)
    orders_per_strategy: dict[WorldId, dict[StrategyId, list[Order]]] | None = Field(
        default=None, exclude_if=_is_none
    )
    crossed_qty: dict[WorldId, list[CrossedQty]] | None = Field(
        default=None,
        exclude_if=_is_none,
        description="Only with per_strategy: per world, every key with strategy orders.",
    )
    overlay_deltas: list[OverlayDelta] | None = Field(default=None, exclude_if=_is_none)
    shared_account: SharedAccountSummary | None = Field(default=None, exclude_if=_is_none)
    submitted: bool
    batch_ids: list[str] = Field(default_factory=list)
    run_id: Identifier | None = Field(default=None, exclude_if=_is_none)
    rebalance_schema_version: SchemaVersion
    alpha_metrics_capable: bool
