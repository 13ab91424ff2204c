"""Turning a served plan into orders (SPEC 4); pure, CPU-bound, run off the event loop.

Scopes and what each order set is built from::

    per_world     plan.per_world[w].deltas            (overlay: that world's overlay deltas)
    per_strategy  strategy_orders(request, plan)      (each strategy's own move, SPEC 3)
                  + crossed_qty per (world, key): what the world's netting cancels
    global        plan.global_deltas                  (overlay: every overlay delta, netted)

Received deltas are normalised first (12 significant digits, then toward zero to the
request's lot) so the orders and their ids do not depend on which WorldService's float noise
came back. Marks (base currency per unit) are the |qty|-weighted marks of the positions in
the scope (the world's for per-world and per-strategy orders); an overlay instrument uses
``overlay.price_by_symbol``. The reduce-only rule judges each order against its holder's own
net position at the key: the world's, the strategy's, or every world's for global orders.
Client order ids are namespaced by ``{id_base}:{scope}:{world}[:{strategy}]``, where
``id_base`` is the run id or the canonical body hash, so ids are deterministic and unique
across batches. Each scope is built in one columnar pass and validated once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qmtl.contracts import (
    ExecuteResponse,
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    OverlayDelta,
    RebalanceMode,
    SharedAccountSummary,
    SymbolDelta,
)
from qmtl.contracts.errors import OverlayExecutionUnmapped, SharedAccountPolicyViolation
from qmtl.engine import (
    Key,
    OrderDict,
    PositionBook,
    StrategyOrders,
    VenuePolicy,
    order_dicts,
    shared_account_figures,
    strategy_orders,
)
from qmtl.engine.book import FloatArray, IntArray, group, weighted_mark
from qmtl.engine.rounding import LotTable, clean_significant, round_to_lot

from .config import SharedAccountPolicy

__all__ = ["GLOBAL_WORLD", "ExecutionOrders", "OrderPolicies", "build_execution",
           "check_shared_account", "response_body"]

GLOBAL_WORLD = "*"
"""The ``world_id`` of a global (shared-account) batch: it spans every world."""


@dataclass(frozen=True, slots=True)
class OrderPolicies:
    """Venue policies from the gateway configuration."""

    venues: Mapping[str, VenuePolicy]
    default: VenuePolicy


@dataclass(frozen=True, slots=True)
class ExecutionOrders:
    """The order sets of one execute call, as wire-shaped dicts (see :func:`response_body`)."""

    per_world: dict[str, list[OrderDict]]
    per_strategy: dict[str, dict[str, list[OrderDict]]] | None
    crossed: dict[str, list[dict[str, Any]]] | None
    global_orders: list[OrderDict] | None
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


def _net(deltas: Sequence[SymbolDelta]) -> list[SymbolDelta]:
    """Deltas summed per (venue, symbol), zeros dropped, in (venue, symbol) order."""
    totals: dict[Key, list[float]] = {}
    for delta in deltas:
        totals.setdefault((delta.venue, delta.symbol), []).append(delta.delta_qty)
    netted = [SymbolDelta(symbol=symbol, venue=venue, delta_qty=math.fsum(values))
              for (venue, symbol), values in totals.items()]
    netted = [d for d in netted if d.delta_qty != 0]
    return sorted(netted, key=lambda d: (d.venue is not None, d.venue or "", d.symbol))


def _crossed(venue: str | None, symbol: str, qty: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"symbol": symbol}
    if venue is not None:
        entry["venue"] = venue
    entry["crossed_qty"] = qty
    return entry


def response_body(head: ExecuteResponse, execution: ExecutionOrders) -> dict[str, Any]:
    """The execute response as JSON-ready data, in the model's field order.

    ``head`` carries (and validates) every field but the order sets; the orders are
    inserted as built. Validating them again would cost more than building them (a Python
    validator per identifier) and could not fail: their symbols and venues come from
    validated input, their quantities are finite and their ids are hex digests.
    """
    dumped = head.model_dump(mode="json")
    built: dict[str, Any] = {
        "orders_per_world": execution.per_world,
        "orders_global": execution.global_orders,
        "orders_per_strategy": execution.per_strategy,
        "crossed_qty": execution.crossed,
    }
    body: dict[str, Any] = {}
    for name in ExecuteResponse.model_fields:
        value = built[name] if name in built else dumped.get(name)
        if name in dumped or (name in built and value is not None):
            body[name] = value
    return body


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


def _normalised(deltas: Sequence[SymbolDelta], lots: Mapping[str, float] | None) -> FloatArray:
    """Received delta quantities cleaned like the engine's own (12 significant digits, then
    toward zero to the request's lot), so ``-9.999999999999998`` from another WorldService
    orders (and hashes) exactly like ``-10.0``."""
    qty = clean_significant(np.array([d.delta_qty for d in deltas], dtype=np.float64))
    table = LotTable.for_symbols([d.symbol for d in deltas], lots)
    return round_to_lot(qty, table)


@dataclass(frozen=True, slots=True, eq=False)
class _Cells:
    """The book's |qty|-weighted mark and net quantity per (world, key) and per key."""

    keys: dict[Key, int]
    n_keys: int
    world_index: dict[str, int]
    world_ids: IntArray
    world_mark: FloatArray
    world_net: FloatArray
    key_ids: IntArray
    key_mark: FloatArray
    key_net: FloatArray

    @classmethod
    def of(cls, book: PositionBook) -> _Cells:
        n_keys = max(len(book.keys), 1)
        key = np.asarray(book.key, dtype=np.int64)
        by_world = group(np.asarray(book.world, dtype=np.int64) * n_keys + key,
                         size=max(len(book.worlds) * n_keys, 1))
        by_key = group(key, size=n_keys)
        return cls(
            keys={k: i for i, k in enumerate(book.keys)}, n_keys=n_keys,
            world_index={w: i for i, w in enumerate(book.worlds)},
            world_ids=by_world.ids,
            world_mark=weighted_mark(by_world, qty=book.qty, mark=book.mark),
            world_net=by_world.sum(book.qty),
            key_ids=by_key.ids,
            key_mark=weighted_mark(by_key, qty=book.qty, mark=book.mark),
            key_net=by_key.sum(book.qty),
        )

    def lookup(self, world: str | None, keys: Sequence[Key]) -> tuple[FloatArray, FloatArray]:
        """Mark (NaN when not held) and net position (0 when not held) at ``keys``."""
        codes = np.array([self.keys.get(k, -1) for k in keys], dtype=np.int64)
        if world is None:
            ids, marks, nets = self.key_ids, self.key_mark, self.key_net
        else:
            w = self.world_index.get(world, -1)
            codes = np.where((codes >= 0) & (w >= 0), w * self.n_keys + codes, -1)
            ids, marks, nets = self.world_ids, self.world_mark, self.world_net
        at = np.searchsorted(ids, codes)
        found = (codes >= 0) & (at < ids.size)
        found[found] = ids[at[found]] == codes[found]
        at = np.where(found, at, 0)
        if ids.size == 0:
            return np.full(codes.size, np.nan), np.zeros(codes.size)
        return np.where(found, marks[at], np.nan), np.where(found, nets[at], 0.0)


def _batched_orders(policies: OrderPolicies, *, keys: Sequence[Key], qty: FloatArray,
                    mark: FloatArray, position: FloatArray, batch: IntArray,
                    prefixes: list[str], key: IntArray | None = None) -> list[list[OrderDict]]:
    """One columnar pass over every batch of a scope: orders per batch.

    ``key`` indexes ``keys`` per row; ``None`` means one key per row (``keys`` per row).
    """
    dicts, order_batch = order_dicts(
        keys=keys, key=np.arange(len(keys), dtype=np.int64) if key is None else key,
        qty=qty, mark=mark,
        position=position, batch=batch, prefixes=prefixes, policies=policies.venues,
        default_policy=policies.default)
    out: list[list[OrderDict]] = [[] for _ in prefixes]
    for b, order in zip(order_batch.tolist(), dicts, strict=True):
        out[b].append(order)
    return out


def _world_orders(request: MultiWorldRebalanceRequest, world_deltas: dict[str, list[SymbolDelta]],
                  worlds: list[str], cells: _Cells, *, policies: OrderPolicies,
                  prefix: str) -> dict[str, list[OrderDict]]:
    keys: list[Key] = []
    batch: list[int] = []
    marks: list[FloatArray] = []
    positions: list[FloatArray] = []
    deltas: list[SymbolDelta] = []
    for b, world in enumerate(worlds):
        these = world_deltas.get(world, [])
        world_keys = [(d.venue, d.symbol) for d in these]
        mark, position = cells.lookup(world, world_keys)
        keys += world_keys
        batch += [b] * len(these)
        marks.append(_with_overlay_prices(request, world_keys, mark))
        positions.append(position)
        deltas += these
    distinct: dict[Key, int] = {}
    key = np.fromiter((distinct.setdefault(k, len(distinct)) for k in keys), dtype=np.int64,
                      count=len(keys))
    orders = _batched_orders(
        policies, keys=list(distinct), key=key,
        qty=_normalised(deltas, request.lot_size_by_symbol),
        mark=np.concatenate(marks) if marks else np.zeros(0),
        position=np.concatenate(positions) if positions else np.zeros(0),
        batch=np.asarray(batch, dtype=np.int64),
        prefixes=[f"{prefix}:per_world:{w}" for w in worlds])
    return dict(zip(worlds, orders, strict=True))


def _with_overlay_prices(request: MultiWorldRebalanceRequest, keys: Sequence[Key],
                         mark: FloatArray) -> FloatArray:
    """Overlay instruments are priced by ``overlay.price_by_symbol``, not by positions."""
    if request.mode is not RebalanceMode.OVERLAY or request.overlay is None:
        return mark
    prices = request.overlay.price_by_symbol
    return np.array([prices.get(symbol, m) for (_, symbol), m in zip(keys, mark.tolist(),
                                                                       strict=True)],
                    dtype=np.float64)


def _strategy_orders(split: StrategyOrders, *, policies: OrderPolicies,
                     prefix: str) -> dict[str, dict[str, list[OrderDict]]]:
    n_names = max(len(split.strategies), 1)
    batches = group(split.world * n_names + split.strategy,
                    size=max(len(split.worlds) * n_names, 1))
    names = [(split.worlds[c // n_names], split.strategies[c % n_names])
             for c in batches.ids.tolist()]
    orders = _batched_orders(
        policies, keys=split.keys, key=split.key, qty=split.qty, mark=split.mark,
        position=split.position, batch=batches.inverse,
        prefixes=[f"{prefix}:per_strategy:{w}:{s}" for w, s in names])
    out: dict[str, dict[str, list[OrderDict]]] = {
        world: {name: [] for name in split.members[w]} for w, world in enumerate(split.worlds)
    }
    for (world, name), batch in zip(names, orders, strict=True):
        out[world][name] = batch
    return out


def build_execution(request: MultiWorldRebalanceRequest, plan: MultiWorldRebalanceResponse, *,
                    per_strategy: bool, shared_account: bool, policies: OrderPolicies,
                    shared_policy: SharedAccountPolicy, id_base: str) -> ExecutionOrders:
    """Every order set an execute call asked for (see the module docstring).

    Raises:
        OverlayExecutionUnmapped: an overlay delta names an instrument no world maps to it.
        SharedAccountPolicyViolation: ``shared_account`` and a limit is exceeded.
        PlanInputInvalid: a world holds positions the plan has no entry for.
    """
    book = PositionBook.from_positions(request.positions)
    cells = _Cells.of(book)
    overlay = request.mode is RebalanceMode.OVERLAY
    if overlay:
        world_deltas = _overlay_world_deltas(request, plan)
    else:
        world_deltas = {w: list(p.deltas) for w, p in plan.per_world.items()}
    worlds = sorted(set(plan.per_world) | set(world_deltas))
    per_world = _world_orders(request, world_deltas, worlds, cells, policies=policies,
                              prefix=id_base)

    by_strategy: dict[str, dict[str, list[OrderDict]]] | None = None
    crossed: dict[str, list[dict[str, Any]]] | None = None
    if per_strategy:
        split = strategy_orders(request, plan, book=book)
        by_strategy = {w: {} for w in worlds}
        by_strategy.update(_strategy_orders(split, policies=policies, prefix=id_base))
        crossed = {w: [] for w in worlds}
        crossed.update({
            world: [_crossed(venue, symbol, qty) for (venue, symbol), qty in rows]
            for world, rows in split.crossed().items()
        })

    global_orders = None
    summary = None
    if shared_account:
        global_deltas = (_net([d for w in worlds for d in world_deltas.get(w, [])])
                         if overlay else list(plan.global_deltas))
        summary = shared_account_figures(request, global_deltas)
        check_shared_account(summary, shared_policy)
        keys = [(d.venue, d.symbol) for d in global_deltas]
        mark, position = cells.lookup(None, keys)
        [global_orders] = _batched_orders(
            policies, keys=keys, qty=_normalised(global_deltas, request.lot_size_by_symbol),
            mark=_with_overlay_prices(request, keys, mark), position=position,
            batch=np.zeros(len(keys), dtype=np.int64), prefixes=[f"{id_base}:global"])

    return ExecutionOrders(
        per_world=per_world, per_strategy=by_strategy, crossed=crossed,
        global_orders=global_orders,
        overlay_deltas=list(plan.overlay_deltas or []) if overlay else None,
        shared_account=summary,
    )
