"""Per-strategy orders for execution: each strategy trades its own move (SPEC 3).

Scaling mode. For strategy ``s`` of world ``w`` at key ``k = (venue, symbol)``:

    m_s = sum(qty_i * (gs[s] - 1))      over s's positions at k in w   (units)

``gs[s]`` is the scale the plan served (``plan.per_world[w].scale_by_strategy[s]``, else
the plan's ``scale_world``), so the orders agree with the world deltas of that plan. ``m_s``
is cleaned exactly like a world delta (:func:`~qmtl.engine.rounding.clean_quantities`:
noise cancel against ``sum(|qty|)``, lot rounding toward zero or 12 significant digits) and
dropped as dust when ``|m_s * mark| < min_trade_notional`` with the *world's* mark at ``k``
(its ``|qty|``-weighted mean). A strategy whose scale is 1 moves by exactly 0: no order.
A pro-rata split of the netted world delta would hand one strategy's trade to another.

Overlay mode. Strategy ``s`` trades its own share of the world's overlay trade on the
world's instrument: ``(gs[s] - 1) * n_s / price`` with ``n_s = sum(qty * mark)`` of its
positions in ``w``; cancel against ``1e-9 * sum(|qty * mark|)``, lot/12-digit cleaning and
``overlay.min_order_notional`` as the dust threshold at the instrument's price.

``crossed_qty`` per (world, key) with at least one strategy order is
``(sum_s |m_s| - |sum_s m_s|) / 2`` over the strategies' cleaned orders: the quantity the
world's netting cancels between its strategies (0 when they all trade the same way).

Each row also carries the strategy's own net position at the key (units), which the order
builder needs for the reduce-only rule. Cost O(n log n): one grouping by (world, strategy,
key); Python runs only per member (world, strategy) and per output row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qmtl.contracts import (
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    RebalanceMode,
    SymbolDelta,
)
from qmtl.contracts.errors import PlanInputInvalid

from .book import (
    FloatArray,
    Groups,
    IntArray,
    Key,
    PositionBook,
    group,
    key_order,
    weighted_mark,
)
from .overlay import overlay_price
from .planning import check_mode, kept_not_dust
from .rounding import LotTable, clean_quantities, clean_significant
from .scales import require_finite

__all__ = ["StrategyOrders", "StrategySplit", "split_per_strategy", "strategy_orders"]

StrategySplit = dict[str, dict[str, list[SymbolDelta]]]
"""world id -> strategy id -> deltas (sorted by venue, symbol)."""


@dataclass(frozen=True, slots=True, eq=False)
class StrategyOrders:
    """Per-strategy quantities in columns.

    ``members[w]`` lists the strategies of plan world ``worlds[w]`` (sorted). Rows (sorted by
    world, strategy, key): ``world`` (index into ``worlds``), ``strategy`` (index into
    ``strategies``), ``key`` (index into ``keys``), ``qty`` (signed units), ``mark`` (the
    world's mark at the key, base currency per unit) and ``position`` (the strategy's own
    net quantity at the key, units). Crossed rows (sorted by world, key): ``crossed_world``,
    ``crossed_key``, ``crossed_qty`` (units, >= 0).
    """

    worlds: tuple[str, ...]
    members: tuple[tuple[str, ...], ...]
    strategies: tuple[str, ...]
    keys: tuple[Key, ...]
    world: IntArray
    strategy: IntArray
    key: IntArray
    qty: FloatArray
    mark: FloatArray
    position: FloatArray
    crossed_world: IntArray
    crossed_key: IntArray
    crossed_qty: FloatArray

    def as_deltas(self) -> StrategySplit:
        """``{world: {strategy: [SymbolDelta]}}`` with every plan world and member."""
        split: StrategySplit = {
            world: {name: [] for name in self.members[w]} for w, world in enumerate(self.worlds)
        }
        for w, s, k, q in zip(
            self.world.tolist(),
            self.strategy.tolist(),
            self.key.tolist(),
            self.qty.tolist(),
            strict=True,
        ):
            venue, symbol = self.keys[k]
            split[self.worlds[w]][self.strategies[s]].append(
                SymbolDelta(symbol=symbol, venue=venue, delta_qty=q)
            )
        return split

    def crossed(self) -> dict[str, list[tuple[Key, float]]]:
        """``{world: [(key, crossed_qty)]}`` for the worlds with strategy orders."""
        out: dict[str, list[tuple[Key, float]]] = {}
        for w, k, q in zip(
            self.crossed_world.tolist(),
            self.crossed_key.tolist(),
            self.crossed_qty.tolist(),
            strict=True,
        ):
            out.setdefault(self.worlds[w], []).append((self.keys[k], q))
        return out


def _plan_scales(
    book: PositionBook, plan: MultiWorldRebalanceResponse
) -> tuple[tuple[str, ...], tuple[str, ...], IntArray, IntArray, FloatArray, IntArray]:
    """Plan worlds, strategy names, and the members (world, strategy) holding positions.

    Returns ``(worlds, strategies, member_world, member_strategy, member_scale,
    position_member)``: per member its world and strategy codes and its served ``gs``, and
    per position its member.
    """
    worlds = tuple(sorted(plan.per_world))
    world_index = {name: i for i, name in enumerate(worlds)}
    for name in book.worlds:
        if name not in world_index:
            raise PlanInputInvalid(
                f"world {name!r} holds positions but the plan has no entry for it",
                field="per_world",
                world_id=name,
            )
    names = sorted(
        set(book.strategies) | {s for p in plan.per_world.values() for s in p.scale_by_strategy}
    )
    name_index = {name: i for i, name in enumerate(names)}
    remap_world = np.array([world_index[w] for w in book.worlds], dtype=np.int64)
    remap_strategy = np.array([name_index[s] for s in book.strategies], dtype=np.int64)
    n_names = max(len(names), 1)
    cells = group(
        remap_world[np.asarray(book.world, dtype=np.int64)] * n_names
        + remap_strategy[np.asarray(book.strategy, dtype=np.int64)],
        size=len(worlds) * n_names,
    )
    member_world = cells.ids // n_names
    member_strategy = cells.ids % n_names
    scale = np.empty(member_world.size)
    # One dictionary lookup per member (world, strategy), not per position.
    for m, (w, s) in enumerate(zip(member_world.tolist(), member_strategy.tolist(), strict=True)):
        served = plan.per_world[worlds[w]]
        scale[m] = served.scale_by_strategy.get(names[s], served.scale_world)
    require_finite(scale, field="per_world.scale_by_strategy")
    return worlds, tuple(names), member_world, member_strategy, scale, cells.inverse


def strategy_orders(
    request: MultiWorldRebalanceRequest,
    plan: MultiWorldRebalanceResponse,
    *,
    book: PositionBook | None = None,
) -> StrategyOrders:
    """Every strategy's own order per key (see the module docstring).

    :param request: the request the plan was computed from (positions, lots, dust).
    :param plan: the served plan (its scales; ``mode`` decides scaling vs overlay).
    :param book: ``PositionBook.from_positions(request.positions)`` when already built.
    :returns: the per-strategy rows and ``crossed_qty`` per (world, key).
    :raises PlanInputInvalid: a world holds positions the plan has no entry for, or a
        figure overflows a float.
    :raises OverlayConfigInvalid: overlay mode and a trading world has no instrument/price.
    """
    check_mode(request)
    if book is None:
        book = PositionBook.from_positions(request.positions)
    worlds, names, member_world, member_strategy, member_scale, position_member = _plan_scales(
        book, plan
    )
    members = _members(worlds, names, plan, member_world, member_strategy)
    if request.mode == RebalanceMode.OVERLAY and request.overlay is not None:
        return _overlay_orders(
            request,
            book,
            worlds,
            names,
            members,
            member_world,
            member_strategy,
            member_scale,
            position_member,
        )

    n_keys = max(len(book.keys), 1)
    key = np.asarray(book.key, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        move = book.qty * (member_scale[position_member] - 1.0)
    require_finite(move, field="positions", indexed=True)
    cells = group(position_member * n_keys + key, size=member_world.size * n_keys)
    raw = cells.sum(move)
    require_finite(raw, field="positions (strategy moves)")
    row_member = cells.ids // n_keys
    row_key = cells.ids % n_keys
    lots = LotTable.for_symbols([symbol for _, symbol in book.keys], request.lot_size_by_symbol)
    qty = clean_quantities(raw, gross=cells.sum(np.abs(book.qty)), table=lots.take(row_key))
    position = cells.sum(book.qty)

    # The world's mark at each key, looked up for each (member, key) row.
    row_world = member_world[row_member]
    world_cells = group(member_world[position_member] * n_keys + key, size=len(worlds) * n_keys)
    world_mark = weighted_mark(world_cells, qty=book.qty, mark=book.mark)
    mark = world_mark[np.searchsorted(world_cells.ids, row_world * n_keys + row_key)]
    return _finish(
        worlds=worlds,
        members=members,
        names=names,
        keys=book.keys,
        world=row_world,
        strategy=member_strategy[row_member],
        key=row_key,
        qty=qty,
        mark=mark,
        position=position,
        threshold=request.min_trade_notional,
    )


def _members(
    worlds: tuple[str, ...],
    names: tuple[str, ...],
    plan: MultiWorldRebalanceResponse,
    member_world: IntArray,
    member_strategy: IntArray,
) -> tuple[tuple[str, ...], ...]:
    """Per plan world: the strategies the plan names plus those holding positions there."""
    listed: list[set[str]] = [set(plan.per_world[w].scale_by_strategy) for w in worlds]
    for w, s in zip(member_world.tolist(), member_strategy.tolist(), strict=True):
        listed[w].add(names[s])
    return tuple(tuple(sorted(names_of)) for names_of in listed)


def _overlay_orders(
    request: MultiWorldRebalanceRequest,
    book: PositionBook,
    worlds: tuple[str, ...],
    names: tuple[str, ...],
    members: tuple[tuple[str, ...], ...],
    member_world: IntArray,
    member_strategy: IntArray,
    member_scale: FloatArray,
    position_member: IntArray,
) -> StrategyOrders:
    """Overlay mode: each strategy's share of its world's overlay trade (module docstring)."""
    assert request.overlay is not None
    with np.errstate(over="ignore", invalid="ignore"):
        notional = book.qty * book.mark
    require_finite(notional, field="positions", indexed=True)
    n_members = member_world.size
    net = np.bincount(position_member, weights=notional, minlength=n_members)
    gross = np.bincount(position_member, weights=np.abs(notional), minlength=n_members)
    with np.errstate(over="ignore", invalid="ignore"):
        trade = (member_scale - 1.0) * net
    require_finite(trade, field="overlay (strategy trade notional)")
    trade = np.where(np.abs(trade) <= 1e-9 * gross, 0.0, trade)
    moving = np.flatnonzero(trade != 0)

    # One instrument per trading world: Python runs per world, not per position.
    instruments: dict[int, tuple[str, float]] = {}
    for w in sorted(set(member_world[moving].tolist())):
        instruments[w] = overlay_price(request.overlay, world_id=worlds[w])
    keys = sorted(set(book.keys) | {(None, sym) for sym, _ in instruments.values()}, key=key_order)
    key_index = {k: i for i, k in enumerate(keys)}
    row_world = member_world[moving]
    row_key = np.array(
        [key_index[(None, instruments[w][0])] for w in row_world.tolist()], dtype=np.int64
    )
    price = np.array([instruments[w][1] for w in row_world.tolist()], dtype=np.float64)
    with np.errstate(over="ignore"):
        raw = trade[moving] / price
    require_finite(raw, field="overlay (strategy trades)")
    lots = LotTable.for_symbols([symbol for _, symbol in keys], request.lot_size_by_symbol)
    qty = clean_quantities(raw, gross=np.zeros(raw.size), table=lots.take(row_key))

    # The strategy's own position at the instrument, when it holds it (venue None).
    book_key = np.array([key_index[k] for k in book.keys], dtype=np.int64)
    n_keys = len(keys)
    held = group(
        position_member * n_keys + book_key[np.asarray(book.key, dtype=np.int64)],
        size=max(n_members * n_keys, 1),
    )
    found, at = _lookup(held.ids, moving * n_keys + row_key)
    position = np.where(found, held.sum(book.qty)[at], 0.0)
    return _finish(
        worlds=worlds,
        members=members,
        names=names,
        keys=tuple(keys),
        world=row_world,
        strategy=member_strategy[moving],
        key=row_key,
        qty=qty,
        mark=price,
        position=position,
        threshold=request.overlay.min_order_notional,
    )


def _lookup(ids: IntArray, codes: IntArray) -> tuple[NDArray[np.bool_], IntArray]:
    """Where each code sits in the ascending ``ids``: ``(found, index)`` (index 0 if absent)."""
    at = np.searchsorted(ids, codes)
    found = at < ids.size
    found[found] = ids[at[found]] == codes[found]
    return found, np.where(found, at, 0)


def _finish(
    *,
    worlds: tuple[str, ...],
    members: tuple[tuple[str, ...], ...],
    names: tuple[str, ...],
    keys: tuple[Key, ...],
    world: IntArray,
    strategy: IntArray,
    key: IntArray,
    qty: FloatArray,
    mark: FloatArray,
    position: FloatArray,
    threshold: float | None,
) -> StrategyOrders:
    """Drop zeros and dust, sort rows, and compute ``crossed_qty`` per (world, key)."""
    keep = kept_not_dust(qty, mark, threshold)
    world, strategy, key = world[keep], strategy[keep], key[keep]
    qty, mark, position = qty[keep], mark[keep], position[keep]
    order = np.lexsort((key, strategy, world))
    world, strategy, key = world[order], strategy[order], key[order]
    qty, mark, position = qty[order], mark[order], position[order]

    n_keys = max(len(keys), 1)
    cells = group(world * n_keys + key, size=max(len(worlds) * n_keys, 1))
    crossed = _crossed_qty(cells, qty)
    return StrategyOrders(
        worlds=worlds,
        members=members,
        strategies=names,
        keys=keys,
        world=world,
        strategy=strategy,
        key=key,
        qty=qty,
        mark=mark,
        position=position,
        crossed_world=cells.ids // n_keys,
        crossed_key=cells.ids % n_keys,
        crossed_qty=crossed,
    )


def _crossed_qty(cells: Groups, qty: FloatArray) -> FloatArray:
    """``(sum |q| - |sum q|) / 2`` per cell; float noise of the subtraction is 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        gross = cells.sum(np.abs(qty))
        crossed = (gross - np.abs(cells.sum(qty))) / 2
        # Strategies crossing near the float maximum: sum|q| overflows although the
        # crossed quantity does not. The same figure from halves (exact unless subnormal).
        half_gross = cells.sum(np.abs(qty) / 2)
        halved = half_gross - np.abs(cells.sum(qty / 2))
    overflowed = ~np.isfinite(gross)
    crossed = np.where(overflowed, halved, crossed)
    require_finite(crossed, field="positions", what="crossed quantities")
    crossed = clean_significant(crossed)
    # Same-sign orders cross 0 exactly; anything within 1e-12 of the gross is noise.
    noise = np.where(overflowed, 2e-12 * half_gross, 1e-12 * gross)
    return np.where(crossed <= noise, 0.0, crossed)


def split_per_strategy(
    request: MultiWorldRebalanceRequest, response: MultiWorldRebalanceResponse
) -> StrategySplit:
    """Each strategy's own deltas, ``{world: {strategy: [SymbolDelta]}}`` (module docstring).

    Every world of the plan and every strategy of that world is listed (possibly with an
    empty list). See :func:`strategy_orders` for the columns and the errors.
    """
    return strategy_orders(request, response).as_deltas()
