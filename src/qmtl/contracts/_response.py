"""Plan and apply responses (SPEC 2.3).

A v1 document has no ``alpha_metrics`` and no ``rebalance_intent`` key at all; use
:func:`qmtl.contracts.render_response` to produce the wire form of a given version.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ._alpha import AlphaMetricsEnvelope
from ._request import RebalanceIntent
from ._types import FiniteFloat, Identifier, SchemaVersion, StrategyId, Symbol, WorldId

__all__ = [
    "ApplyResponse",
    "ApplyResponseV1",
    "MultiWorldRebalanceResponse",
    "OverlayDelta",
    "RebalancePlan",
    "RebalanceResponseV1",
    "SymbolDelta",
]


def _is_none(value: object) -> bool:
    return value is None


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class SymbolDelta(_WireModel):
    """A signed quantity to trade (+ buys) at one (venue, symbol); venue omitted when null."""

    symbol: Symbol
    delta_qty: FiniteFloat
    venue: Identifier | None = Field(default=None, exclude_if=_is_none)


class OverlayDelta(SymbolDelta):
    """An overlay trade attributed to the world whose exposure it adjusts."""

    world_id: WorldId


class RebalancePlan(_WireModel):
    """One world's plan: the world scale, each strategy's scale and the netted deltas."""

    world_id: WorldId
    scale_world: FiniteFloat
    scale_by_strategy: dict[StrategyId, FiniteFloat] = Field(default_factory=dict)
    deltas: list[SymbolDelta] = Field(default_factory=list)


class RebalanceResponseV1(_WireModel):
    """The v1 response: scaling plans only."""

    schema_version: SchemaVersion = 1
    per_world: dict[WorldId, RebalancePlan] = Field(default_factory=dict)
    global_deltas: list[SymbolDelta] = Field(default_factory=list)
    overlay_deltas: list[OverlayDelta] | None = Field(default=None, exclude_if=_is_none)


class MultiWorldRebalanceResponse(RebalanceResponseV1):
    """The v2 response: v1 plus the alpha metrics envelope and the caller's intent.

    Both additions are optional in the schema (a v2 reader must accept a v1 document);
    a v2 WorldService always sends them.
    """

    alpha_metrics: AlphaMetricsEnvelope | None = None
    rebalance_intent: RebalanceIntent | None = None


class ApplyResponseV1(RebalanceResponseV1):
    """A v1 apply response: the served plan plus its run id and etag."""

    run_id: Identifier
    etag: str


class ApplyResponse(MultiWorldRebalanceResponse):
    """A v2 apply response: the served plan plus its run id and etag."""

    run_id: Identifier
    etag: str
