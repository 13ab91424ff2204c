"""Per-strategy split of world deltas for execution (SPEC 3, last bullets).

A world delta ``D`` (units) at key ``k`` is shared among the world's strategies (the
plan's members) with weights

* ``e_s = |sum(qty * mark)|`` of strategy ``s``'s positions at ``k`` in the world (base
  currency) when any ``e_s > 0`` (``e_s <= 1e-9 * sum(|qty * mark|)`` counts as 0);
* otherwise the strategies' *after* ratios when ``D > 0`` and *before* ratios when
  ``D < 0`` (ratios of total equity, negatives count as 0);
* equal weights when those are all zero.

With a lot size, ``N = floor(|D| / lot + 1e-9)`` whole lots are dealt out: each strategy
gets ``floor(N * w_s / sum(w))`` lots and the ``N - sum(floor)`` remaining lots go one each
to the largest fractional remainders (ties: strategy id order), so the pieces sum to
exactly ``N`` lots. Without a lot, each piece is ``D * w_s / sum(w)`` cleaned to 12
significant digits and the largest piece absorbs the residue, ``D - sum(others)``.
Then zero pieces and dust (``|piece * mark| < min_trade_notional``) are dropped. Every
piece carries its strategy id from the start, so dropping one strategy's dust piece can
never shift another strategy's quantity onto the wrong id.

Overlay mode splits ``overlay_deltas`` the same way, with the overlay price as mark and
``overlay.min_order_notional`` as the dust threshold. Cost O(n log n + pieces).
"""

from __future__ import annotations

import numpy as np

from qmtl.contracts import (
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    RebalanceMode,
    SymbolDelta,
)
from qmtl.contracts.errors import PlanInputInvalid

from .book import (
    FloatArray,
    IntArray,
    Key,
    PositionBook,
    group,
    key_order,
    sum_by,
    weighted_mark,
)
from .overlay import overlay_price
from .planning import allocation_inputs, check_mode
from .rounding import CANCEL_TOLERANCE, LotTable, clean_significant, from_lots, lots_of
from .scales import Scales, compute_scales, position_notional

__all__ = ["StrategySplit", "split_per_strategy"]

StrategySplit = dict[str, dict[str, list[SymbolDelta]]]
"""world id -> strategy id -> deltas (sorted by venue, symbol)."""


def _group_starts(sorted_groups: IntArray) -> IntArray:
    """Index of the first element of each element's run in an ascending array."""
    return np.searchsorted(sorted_groups, sorted_groups, side="left").astype(np.int64)


def _world_keys(
    request: MultiWorldRebalanceRequest, response: MultiWorldRebalanceResponse
) -> tuple[list[tuple[str, Key, float]], float | None, dict[Key, float]]:
    """Rows ``(world, key, D)`` to split, the dust threshold and overlay prices by key."""
    if request.mode == RebalanceMode.OVERLAY and request.overlay is not None:
        prices: dict[Key, float] = {}
        rows = []
        for delta in response.overlay_deltas or []:
            symbol, price = overlay_price(request.overlay, world_id=delta.world_id)
            if symbol != delta.symbol:
                raise PlanInputInvalid(
                    f"overlay delta {delta.symbol!r} is not world {delta.world_id!r}'s "
                    f"instrument {symbol!r}",
                    field="overlay_deltas",
                    world_id=delta.world_id,
                    symbol=delta.symbol,
                )
            prices[(delta.venue, delta.symbol)] = price
            rows.append((delta.world_id, (delta.venue, delta.symbol), delta.delta_qty))
        return rows, request.overlay.min_order_notional, prices
    rows = [
        (world, (d.venue, d.symbol), d.delta_qty)
        for world, plan in response.per_world.items()
        for d in plan.deltas
    ]
    return rows, request.min_trade_notional, {}


def split_per_strategy(
    request: MultiWorldRebalanceRequest, response: MultiWorldRebalanceResponse
) -> StrategySplit:
    """Split each world's deltas across its strategies (see the module docstring).

    :param request: the request the plan was computed from (positions, allocations).
    :param response: the plan (``per_world`` deltas, or ``overlay_deltas`` in overlay mode).
    :returns: ``{world: {strategy: [SymbolDelta]}}`` with every world of the response and
        every strategy of that world (possibly with an empty list).
    :raises PlanInputInvalid: a delta names a world unknown to the request, a world has
        no strategy to receive it, or a world lists the same key twice.
    """
    check_mode(request)
    book = PositionBook.from_positions(request.positions)
    scales = compute_scales(book, allocation_inputs(request))
    rows, threshold, prices = _world_keys(request, response)
    world_index = {name: i for i, name in enumerate(scales.worlds)}
    for world, key, _ in rows:
        if world not in world_index:
            raise PlanInputInvalid(
                f"the plan has a delta for world {world!r}, which the request does not know",
                field="per_world",
                world_id=world,
                symbol=key[1],
            )

    # One key universe for positions and deltas, in wire order.
    keys = sorted(set(book.keys) | {key for _, key, _ in rows}, key=key_order)
    key_index = {key: i for i, key in enumerate(keys)}
    n_keys = len(keys)
    book_key = np.array([key_index[k] for k in book.keys], dtype=np.int64)[
        np.asarray(book.key, dtype=np.int64)
    ]
    d_world = np.array([world_index[w] for w, _, _ in rows], dtype=np.int64)
    d_key = np.array([key_index[k] for _, k, _ in rows], dtype=np.int64)
    d_qty = np.array([q for _, _, q in rows], dtype=np.float64)
    d_code = d_world * n_keys + d_key
    if np.unique(d_code).size != d_code.size:
        raise PlanInputInvalid("a world lists the same (venue, symbol) twice", field="deltas")

    d_mark = _delta_marks(book, scales, book_key=book_key, d_code=d_code, n_keys=n_keys)
    for key, price in prices.items():
        d_mark[d_key == key_index[key]] = price

    c_delta, c_member, c_weight = _candidates(
        book,
        scales,
        book_key=book_key,
        d_code=d_code,
        d_world=d_world,
        d_qty=d_qty,
        n_keys=n_keys,
    )
    missing = np.setdiff1d(np.arange(d_qty.size), c_delta)
    if missing.size:
        first = int(missing[0])
        raise PlanInputInvalid(
            f"world {rows[first][0]!r} has no strategy to receive its {rows[first][1][1]!r} delta",
            field="per_world",
            world_id=rows[first][0],
            symbol=rows[first][1][1],
        )
    lots = LotTable.for_symbols([symbol for _, symbol in keys], request.lot_size_by_symbol)
    pieces = _deal(c_delta, c_member, c_weight, d_qty=d_qty, table=lots.take(d_key[c_delta]))

    keep = pieces != 0
    if threshold:
        mark = d_mark[c_delta]
        keep &= ~(np.isfinite(mark) & (np.abs(pieces * mark) < threshold))
    c_delta, c_member, pieces = c_delta[keep], c_member[keep], pieces[keep]
    order = np.lexsort((d_key[c_delta], c_member))

    split: StrategySplit = {}
    for world in sorted(set(response.per_world) | {w for w, _, _ in rows}):
        # A plan world the request does not know has no deltas here (checked above).
        members = scales.scale_by_strategy(world_index[world]) if world in world_index else {}
        split[world] = {name: [] for name in members}
    for d, m, q in zip(
        c_delta[order].tolist(), c_member[order].tolist(), pieces[order].tolist(), strict=True
    ):
        venue, symbol = keys[int(d_key[d])]
        world = scales.worlds[int(scales.member_world[m])]
        split[world][scales.member_strategy[m]].append(
            SymbolDelta(symbol=symbol, venue=venue, delta_qty=q)
        )
    return split


def _delta_marks(
    book: PositionBook, scales: Scales, *, book_key: IntArray, d_code: IntArray, n_keys: int
) -> FloatArray:
    """The world's ``|qty|``-weighted mark at each delta's key (NaN when not held)."""
    cells = group(scales.position_world * n_keys + book_key, size=len(scales.worlds) * n_keys)
    marks = weighted_mark(cells, qty=book.qty, mark=book.mark)
    at = np.searchsorted(cells.ids, d_code)
    found = at < cells.ids.size
    found[found] = cells.ids[at[found]] == d_code[found]
    out = np.full(d_code.size, np.nan)
    out[found] = marks[at[found]]
    return out


def _candidates(
    book: PositionBook,
    scales: Scales,
    *,
    book_key: IntArray,
    d_code: IntArray,
    d_world: IntArray,
    d_qty: FloatArray,
    n_keys: int,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Rows ``(delta, member, weight)``: exposure weights, else after/before/equal weights."""
    notional = position_notional(book)
    cells = group(scales.position_member * n_keys + book_key, size=scales.scale.size * n_keys)
    exposure = np.abs(cells.sum(notional))
    # A strategy whose positions at the key cancel (up to float noise) has no exposure.
    exposure[exposure <= CANCEL_TOLERANCE * cells.sum(np.abs(notional))] = 0.0
    e_member = cells.ids // max(n_keys, 1)
    e_code = scales.member_world[e_member] * n_keys + cells.ids % max(n_keys, 1)
    by_code = np.argsort(d_code, kind="stable")
    at = np.searchsorted(d_code[by_code], e_code)
    hit = (at < d_code.size) & (exposure > 0)
    hit[hit] = d_code[by_code[at[hit]]] == e_code[hit]
    x_delta = by_code[at[hit]]
    x_member = e_member[hit]
    x_weight = exposure[hit]

    held = sum_by(x_delta, x_weight, size=d_qty.size) > 0
    bare = np.flatnonzero(~held)
    n_worlds = len(scales.worlds)
    starts = np.searchsorted(scales.member_world, np.arange(n_worlds), side="left")
    counts = np.searchsorted(scales.member_world, np.arange(n_worlds), side="right") - starts
    reps = counts[d_world[bare]]
    f_delta = np.repeat(bare, reps)
    offset = np.arange(f_delta.size) - np.repeat(np.cumsum(reps) - reps, reps)
    f_member = np.repeat(starts[d_world[bare]], reps) + offset
    f_weight = np.maximum(
        np.where(d_qty[f_delta] > 0, scales.after[f_member], scales.before[f_member]), 0.0
    )
    unweighted = sum_by(f_delta, f_weight, size=d_qty.size) <= 0
    f_weight = np.where(unweighted[f_delta], 1.0, f_weight)

    c_delta = np.concatenate([x_delta, f_delta]).astype(np.int64)
    c_member = np.concatenate([x_member, f_member]).astype(np.int64)
    c_weight = np.concatenate([x_weight, f_weight]).astype(np.float64)
    order = np.lexsort((c_member, c_delta))
    return c_delta[order], c_member[order], c_weight[order]


def _deal(
    c_delta: IntArray,
    c_member: IntArray,
    c_weight: FloatArray,
    *,
    d_qty: FloatArray,
    table: LotTable,
) -> FloatArray:
    """Each candidate's piece of its delta (see the module docstring).

    Candidates are grouped by ``c_delta`` (ascending); ``table`` is the lot of each
    candidate's key.
    """
    total = sum_by(c_delta, c_weight, size=d_qty.size)
    share = c_weight / total[c_delta]
    amount = d_qty[c_delta]
    has_lot = table.has_lot

    # Whole lots: the floor of each quota, then one more lot each to the largest remainders.
    lots_total = np.where(has_lot, lots_of(amount, table), 0.0)
    quota = lots_total * share
    base = np.floor(quota)
    fraction = quota - base
    owed = lots_total - sum_by(c_delta, base, size=d_qty.size)[c_delta]
    order = np.lexsort((c_member, -fraction, c_delta))
    rank = np.arange(order.size) - _group_starts(c_delta[order])
    bonus = np.zeros(order.size)
    bonus[order] = rank < owed[order]
    lot_pieces = from_lots(np.sign(amount), base + bonus, table)

    # No lot: proportional pieces; the largest share absorbs the residue.
    pieces = clean_significant(amount * share)
    largest = np.lexsort((c_member, -share, c_delta))
    absorber = largest[_group_starts(c_delta[largest]) == np.arange(largest.size)]
    summed = sum_by(c_delta, pieces, size=d_qty.size)[c_delta[absorber]]
    pieces[absorber] = clean_significant(amount[absorber] - (summed - pieces[absorber]))
    return np.where(has_lot, lot_pieces, pieces)
