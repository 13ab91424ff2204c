"""Turning a served plan into orders (SPEC 4); pure, CPU-bound, run off the event loop.

Scopes and what each order set is built from::

    per_world     plan.per_world[w].deltas            (overlay: that world's overlay deltas)
    per_strategy  split_per_strategy(request, plan)   (one set per world and strategy)
    global        plan.global_deltas                  (overlay: every overlay delta, netted)

Marks (base currency per unit) are the |qty|-weighted marks of the positions in the scope;
an overlay instrument uses ``overlay.price_by_symbol``. Exposure (the net position per
(venue, symbol) in units, for the reduce-only rule) is the net quantity of the positions in
the scope. Client order ids are namespaced by ``{id_base}:{scope}:{world}[:{strategy}]``,
where ``id_base`` is the run id or the canonical body hash, so ids are deterministic and
unique across batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qmtl.contracts import (
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    Order,
    OverlayDelta,
    RebalanceMode,
    SharedAccountSummary,
    SymbolDelta,
)
from qmtl.contracts.errors import OverlayExecutionUnmapped, SharedAccountPolicyViolation
from qmtl.engine import (
    Key,
    PositionBook,
    VenuePolicy,
    build_orders,
    shared_account_figures,
    split_per_strategy,
)

from .config import SharedAccountPolicy

__all__ = ["GLOBAL_WORLD", "ExecutionOrders", "OrderPolicies", "build_execution",
           "check_shared_account"]

GLOBAL_WORLD = "*"
"""The ``world_id`` of a global (shared-account) batch: it spans every world."""


@dataclass(frozen=True, slots=True)
class OrderPolicies:
    """Venue policies from the gateway configuration."""

    venues: Mapping[str, VenuePolicy]
    default: VenuePolicy


@dataclass(frozen=True, slots=True)
class ExecutionOrders:
    """The order sets of one execute call."""

    per_world: dict[str, list[Order]]
    per_strategy: dict[str, dict[str, list[Order]]] | None
    global_orders: list[Order] | None
    overlay_deltas: list[OverlayDelta] | None
    shared_account: SharedAccountSummary | None


def _overlay_world_deltas(request: MultiWorldRebalanceRequest,
                          plan: MultiWorldRebalanceResponse) -> dict[str, list[SymbolDelta]]:
    """Overlay deltas per world, each checked against the request's instrument mapping."""
    assert request.overlay is not None
    mapping = request.overlay.instrument_by_world
    mapped = set(mapping.values())
    by_world: dict[str, list[SymbolDelta]] = {}
    for delta in plan.overlay_deltas or []:
        if delta.symbol not in mapped or mapping.get(delta.world_id) != delta.symbol:
            raise OverlayExecutionUnmapped(
                f"overlay delta {delta.symbol!r} for world {delta.world_id!r} is not an "
                "instrument that world is mapped to in overlay.instrument_by_world",
                world_id=delta.world_id, symbol=delta.symbol,
            )
        by_world.setdefault(delta.world_id, []).append(
            SymbolDelta(symbol=delta.symbol, delta_qty=delta.delta_qty, venue=delta.venue))
    return by_world


def _overlay_marks(request: MultiWorldRebalanceRequest,
                   deltas: Sequence[SymbolDelta]) -> dict[Key, float]:
    prices = request.overlay.price_by_symbol if request.overlay is not None else {}
    return {(d.venue, d.symbol): prices[d.symbol] for d in deltas if d.symbol in prices}


def _net(deltas: Sequence[SymbolDelta]) -> list[SymbolDelta]:
    """Deltas summed per (venue, symbol), zeros dropped, in (venue, symbol) order."""
    totals: dict[Key, list[float]] = {}
    for delta in deltas:
        totals.setdefault((delta.venue, delta.symbol), []).append(delta.delta_qty)
    netted = [SymbolDelta(symbol=symbol, venue=venue, delta_qty=math.fsum(values))
              for (venue, symbol), values in totals.items()]
    netted = [d for d in netted if d.delta_qty != 0]
    return sorted(netted, key=lambda d: (d.venue is not None, d.venue or "", d.symbol))


def check_shared_account(summary: SharedAccountSummary, policy: SharedAccountPolicy) -> None:
    """Raise when the netted orders break a shared-account limit.

    Limits: ``gross_notional <= max_gross_notional``, ``|net_notional| <= max_net_notional``
    (base currency) and ``margin_headroom >= min_margin_headroom`` (ratio); unset = no limit.

    Raises:
        SharedAccountPolicyViolation: with ``context = {figures, limits, violations}``.
    """
    violations = []
    if policy.max_gross_notional is not None and summary.gross_notional > policy.max_gross_notional:
        violations.append("max_gross_notional")
    if policy.max_net_notional is not None and abs(summary.net_notional) > policy.max_net_notional:
        violations.append("max_net_notional")
    if (policy.min_margin_headroom is not None
            and summary.margin_headroom < policy.min_margin_headroom):
        violations.append("min_margin_headroom")
    if violations:
        raise SharedAccountPolicyViolation(
            "orders exceed the shared-account policy: " + ", ".join(violations),
            context={
                "figures": summary.model_dump(),
                "limits": policy.model_dump(exclude={"enabled"}),
                "violations": violations,
            },
        )


def build_execution(request: MultiWorldRebalanceRequest, plan: MultiWorldRebalanceResponse, *,
                    per_strategy: bool, shared_account: bool, policies: OrderPolicies,
                    shared_policy: SharedAccountPolicy, id_base: str) -> ExecutionOrders:
    """Every order set an execute call asked for (see the module docstring).

    Raises:
        OverlayExecutionUnmapped: an overlay delta names an instrument no world maps to it.
        SharedAccountPolicyViolation: ``shared_account`` and a limit is exceeded.
    """
    book = PositionBook.from_positions(request.positions)
    overlay = request.mode is RebalanceMode.OVERLAY
    if overlay:
        world_deltas = _overlay_world_deltas(request, plan)
    else:
        world_deltas = {w: list(p.deltas) for w, p in plan.per_world.items()}
    worlds = sorted(set(plan.per_world) | set(world_deltas))

    def orders(deltas: Sequence[SymbolDelta], *, marks: dict[Key, float],
               exposure: dict[Key, float], prefix: str) -> list[Order]:
        if overlay:
            marks = {**marks, **_overlay_marks(request, deltas)}
        return build_orders(deltas, marks=marks, exposure=exposure, policies=policies.venues,
                            default_policy=policies.default, id_prefix=f"{id_base}:{prefix}")

    world_marks = {w: book.marks_by_key(world_id=w) for w in worlds}
    per_world = {
        w: orders(world_deltas.get(w, []), marks=world_marks[w],
                  exposure=book.net_qty_by_key(world_id=w), prefix=f"per_world:{w}")
        for w in worlds
    }

    strategy_orders: dict[str, dict[str, list[Order]]] | None = None
    if per_strategy:
        split = split_per_strategy(request, plan)
        strategy_orders = {w: {} for w in worlds}
        for w, by_strategy in split.items():
            marks = world_marks.get(w) or book.marks_by_key(world_id=w)
            strategy_orders[w] = {
                s: orders(deltas, marks=marks,
                          exposure=book.net_qty_by_key(world_id=w, strategy_id=s),
                          prefix=f"per_strategy:{w}:{s}")
                for s, deltas in sorted(by_strategy.items())
            }

    global_orders = None
    summary = None
    if shared_account:
        global_deltas = (_net([d for w in worlds for d in world_deltas.get(w, [])])
                         if overlay else list(plan.global_deltas))
        summary = shared_account_figures(request, global_deltas)
        check_shared_account(summary, shared_policy)
        global_orders = orders(global_deltas, marks=book.marks_by_key(),
                               exposure=book.net_qty_by_key(), prefix="global")

    return ExecutionOrders(
        per_world=per_world, per_strategy=strategy_orders, global_orders=global_orders,
        overlay_deltas=list(plan.overlay_deltas or []) if overlay else None,
        shared_account=summary,
    )
