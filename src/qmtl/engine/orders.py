"""Turning deltas into venue orders (SPEC 4).

For each delta at key ``k = (venue, symbol)`` with policy ``p = policies[venue]`` (else
``default_policy``; a delta without venue always uses ``default_policy``):

1. ``q`` = the delta rounded toward zero to ``p.lot_size`` (artefact-free); zero -> dropped.
2. dropped when ``|q * marks[k]| < p.min_notional`` (base currency, strictly below).
3. ``side = "buy"`` if ``q > 0`` else ``"sell"``; ``time_in_force = "IOC"`` if
   ``p.requires_ioc`` else ``p.default_time_in_force``.
4. ``reduce_only`` (only when ``p.supports_reduce_only``, else omitted): with ``exposure``
   (net position per key, units), ``True`` when the order only reduces that position — a
   sell with ``0 < |q| <= long`` or a buy with ``|q| <= |short|`` (1e-9 relative
   tolerance); otherwise omitted. With ``exposure=None`` SPEC 4's literal rule applies:
   ``True`` for every sell. (The literal rule also marks a sell that extends a short as
   reduce-only, which a venue rejects; pass ``exposure`` to avoid it.)
5. ``client_order_id = "q" + sha256(f"{id_prefix}|{venue}|{symbol}|{q!r}")[:31]`` — the same
   inputs always give the same id; make ``id_prefix`` unique per batch (run, world, scope).

Cost O(deltas).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qmtl.contracts import Order, SymbolDelta
from qmtl.contracts.errors import PlanInputInvalid

from .book import Key
from .rounding import LotTable, round_to_lot

__all__ = ["REDUCE_ONLY_TOLERANCE", "VenuePolicy", "build_orders", "client_order_id"]

REDUCE_ONLY_TOLERANCE = 1e-9
"""A reducing order may exceed the position by this fraction of it (float noise)."""


class VenuePolicy(BaseModel):
    """How one venue accepts orders (also the gateway's venue configuration).

    ``lot_size``: units of the instrument (> 0; ``None`` = no rounding);
    ``min_notional``: base currency (>= 0).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lot_size: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    min_notional: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    supports_reduce_only: bool = True
    requires_ioc: bool = False
    default_time_in_force: Literal["GTC", "IOC", "FOK", "DAY"] = "GTC"


def client_order_id(*, id_prefix: str, venue: str | None, symbol: str, quantity: float) -> str:
    """Deterministic order id: ``"q"`` + 31 hex chars of a SHA-256 (32 characters)."""
    digest = hashlib.sha256(f"{id_prefix}|{venue}|{symbol}|{quantity!r}".encode()).hexdigest()
    return "q" + digest[:31]


def _reduce_only(quantity: float, *, key: Key, exposure: Mapping[Key, float] | None) -> bool | None:
    if exposure is None:
        return True if quantity < 0 else None
    position = exposure.get(key, 0.0)
    limit = abs(position) * (1 + REDUCE_ONLY_TOLERANCE)
    if quantity < 0 < position and abs(quantity) <= limit:
        return True
    if quantity > 0 > position and quantity <= limit:
        return True
    return None


def build_orders(
    deltas: Sequence[SymbolDelta],
    *,
    marks: Mapping[Key, float],
    exposure: Mapping[Key, float] | None,
    policies: Mapping[str, VenuePolicy],
    default_policy: VenuePolicy,
    id_prefix: str,
) -> list[Order]:
    """Orders for ``deltas`` under venue policies (see the module docstring).

    :param deltas: signed quantities per (venue, symbol).
    :param marks: price per key (base currency per unit), needed when a policy has a
        ``min_notional``.
    :param exposure: net position per key (units), or ``None`` for the literal
        reduce-only rule.
    :param policies: policy per venue.
    :param default_policy: policy for unknown venues and venue-less deltas.
    :param id_prefix: namespace of the deterministic client order ids.
    :returns: orders in the order of ``deltas`` (dropped ones omitted).
    :raises PlanInputInvalid: a ``min_notional`` check needs a mark that ``marks`` lacks.
    """
    orders: list[Order] = []
    for delta in deltas:
        key: Key = (delta.venue, delta.symbol)
        policy = (
            default_policy if delta.venue is None else policies.get(delta.venue, default_policy)
        )
        quantity = delta.delta_qty
        if policy.lot_size is not None:
            table = LotTable.from_lots([policy.lot_size])
            quantity = float(round_to_lot(np.array([quantity]), table)[0])
        if quantity == 0:
            continue
        if policy.min_notional > 0:
            mark = marks.get(key)
            if mark is None:
                raise PlanInputInvalid(
                    f"no mark for {delta.symbol!r} at venue {delta.venue!r}: "
                    "cannot apply the venue's min_notional",
                    field="marks",
                    symbol=delta.symbol,
                    venue=delta.venue,
                )
            if abs(quantity * mark) < policy.min_notional:
                continue
        orders.append(
            Order(
                symbol=delta.symbol,
                quantity=quantity,
                side="buy" if quantity > 0 else "sell",
                time_in_force="IOC" if policy.requires_ioc else policy.default_time_in_force,
                venue=delta.venue,
                reduce_only=(
                    _reduce_only(quantity, key=key, exposure=exposure)
                    if policy.supports_reduce_only
                    else None
                ),
                client_order_id=client_order_id(
                    id_prefix=id_prefix, venue=delta.venue, symbol=delta.symbol, quantity=quantity
                ),
            )
        )
    return orders
