"""The explain document: why every world delta of a plan exists (``POST /rebalancing/explain``).

Versionless (no ``schema_version``): it is a new document next to the plan, and the v1/v2
plan documents do not change. Quantities are units of the instrument, notionals base
currency. Per (world, venue, symbol) with any strategy move:

* ``raw_move`` = Σ qty × (gs − 1) over the world's positions at the key;
* ``netted_qty`` = ``raw_move`` after float-noise cancellation (moves that cancel → 0);
* ``crossed_qty`` = (Σₛ|mₛ| − |Σₛ mₛ|) / 2, what the world's strategies traded between
  themselves and therefore never reaches the market;
* ``rounded_qty`` = ``netted_qty`` lot-rounded toward zero (12 significant digits without
  a lot), ``lot_residual`` = ``netted_qty − rounded_qty`` (0 without a lot);
* ``mark`` = the |qty|-weighted mark of the world's positions at the key,
  ``rounded_notional`` = |rounded_qty × mark|, ``dropped_as_dust`` when it is strictly
  below ``min_trade_notional``;
* ``final_delta`` = the plan's delta (0 when dropped), ``notional`` = final_delta × mark.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ._request import RebalanceMode
from ._types import FiniteFloat, Identifier, NonNegativeFloat, StrategyId, Symbol, WorldId

__all__ = ["Disposition", "KeyExplanation", "RebalanceExplanation", "WorldExplanation"]


def _is_none(value: object) -> bool:
    return value is None


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class Disposition(StrEnum):
    """What became of a key's moves."""

    TRADED = "traded"
    """A non-zero delta reaches the plan."""
    NETTED = "netted"
    """The strategies' moves cancel out at the key: nothing to trade."""
    ROUNDED = "rounded"
    """The netted quantity is less than one lot: rounded to zero."""
    DUST = "dust"
    """The rounded delta's notional is strictly below ``min_trade_notional``."""


class KeyExplanation(_WireModel):
    """One world's figures at one (venue, symbol); see the module docstring."""

    symbol: Symbol
    venue: Identifier | None = Field(default=None, exclude_if=_is_none)
    strategies: int = Field(ge=0, description="strategies holding the key in the world")
    raw_move: FiniteFloat
    netted_qty: FiniteFloat
    crossed_qty: FiniteFloat
    rounded_qty: FiniteFloat
    lot_residual: FiniteFloat
    mark: FiniteFloat
    rounded_notional: FiniteFloat
    dropped_as_dust: bool
    final_delta: FiniteFloat
    notional: FiniteFloat
    disposition: Disposition


class WorldExplanation(_WireModel):
    """One world: allocations, scales, notionals before/after the deltas, turnover.

    Notionals are netted per key (a long and a short of the world at one key offset each
    other): ``net_notional_*`` = Σₖ vₖ and ``gross_notional_*`` = Σₖ |vₖ| with
    vₖ = Σ qty × mark before and vₖ + final_delta × mark after. ``turnover`` =
    Σ |notional| / total_equity (0 when total_equity is 0). In overlay mode ``keys`` is
    empty and the world's overlay trade (a holding of the instrument) moves the figures.
    """

    world_id: WorldId
    alloc_before: FiniteFloat
    alloc_after: FiniteFloat
    scale_world: FiniteFloat
    scale_by_strategy: dict[StrategyId, FiniteFloat] = Field(default_factory=dict)
    gross_notional_before: FiniteFloat
    gross_notional_after: FiniteFloat
    net_notional_before: FiniteFloat
    net_notional_after: FiniteFloat
    traded_notional: FiniteFloat
    turnover: FiniteFloat
    keys: list[KeyExplanation] = Field(default_factory=list)


class RebalanceExplanation(_WireModel):
    """The explain document (versionless); ``per_world`` lists every planned world."""

    mode: RebalanceMode
    total_equity: NonNegativeFloat
    min_trade_notional: NonNegativeFloat | None = None
    per_world: dict[WorldId, WorldExplanation] = Field(default_factory=dict)
