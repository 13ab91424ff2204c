"""The scaling planner (SPEC 3) and the request/response entry point.

Core: :func:`plan_book` works on a :class:`~qmtl.engine.book.PositionBook` and returns a
columnar :class:`BookPlan`; :func:`plan_rebalance` adapts wire objects around it.

For each position ``i`` of world ``w`` held by strategy ``s``: the move is
``qty_i * (gs - 1)`` (units of the instrument). Moves are summed per (world, venue,
symbol) as quantities, cleaned (:func:`~qmtl.engine.rounding.clean_quantities`: noise
cancel, lot rounding toward zero or 12 significant digits) and dropped as dust when
``|delta * mark| < min_trade_notional`` (base currency; ``mark`` = the world's
``|qty|``-weighted average mark at the key). Global deltas sum the surviving world deltas
per key, are cleaned again (lot multiples stay multiples) and dust-filtered with the
key's mark across all worlds. Cost O(n log n) in positions at worst (O(n) when the code
spaces are small); no Python loop runs per position or per symbol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qmtl.contracts import (
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    OverlayDelta,
    RebalanceMode,
    RebalancePlan,
    SymbolDelta,
)
from qmtl.contracts.errors import OverlayConfigRequired, RebalanceModeUnsupported

from .book import FloatArray, IntArray, Key, PositionBook, group, sum_by, weighted_mark
from .overlay import plan_overlay
from .rounding import (
    CANCEL_TOLERANCE,
    MAX_LOTS,
    LotTable,
    clean_quantities,
    clean_significant,
    from_lots,
)
from .scales import AllocationInputs, Scales, compute_scales, require_finite

__all__ = [
    "BookPlan",
    "allocation_inputs",
    "check_mode",
    "kept_not_dust",
    "plan_book",
    "plan_rebalance",
    "to_response",
]


@dataclass(frozen=True, slots=True, eq=False)
class BookPlan:
    """A scaling plan in columns.

    World deltas (one row each, ordered by world then key): ``delta_world`` (index into
    ``scales.worlds``), ``delta_key`` (index into ``keys``), ``delta_qty`` (signed units).
    Global deltas (ordered by key): ``global_key``, ``global_qty``.
    """

    scales: Scales
    keys: tuple[Key, ...]
    delta_world: IntArray
    delta_key: IntArray
    delta_qty: FloatArray
    global_key: IntArray
    global_qty: FloatArray

    @classmethod
    def without_deltas(cls, scales: Scales, keys: tuple[Key, ...]) -> BookPlan:
        """The worlds' scales and no delta (overlay mode, and response skeletons)."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(scales=scales, keys=keys, delta_world=empty, delta_key=empty,
                   delta_qty=np.zeros(0), global_key=empty, global_qty=np.zeros(0))

    def world_rows(self, world_index: int) -> slice:
        """The rows of ``delta_*`` that belong to one planned world."""
        start = int(np.searchsorted(self.delta_world, world_index, side="left"))
        stop = int(np.searchsorted(self.delta_world, world_index, side="right"))
        return slice(start, stop)


def kept_not_dust(qty: FloatArray, mark: FloatArray, threshold: float | None) -> NDArray[np.bool_]:
    """Rows that trade: non-zero and, with a threshold, ``|qty * mark| >= threshold``."""
    keep: NDArray[np.bool_] = np.asarray(qty != 0)
    if threshold:
        # Strictly below the threshold is dust; exactly at it is kept. A notional that
        # overflows to inf is far above any threshold: kept, as it should be.
        with np.errstate(over="ignore"):
            keep = keep & (np.abs(qty * mark) >= threshold)
    return keep


def plan_book(
    book: PositionBook,
    inputs: AllocationInputs,
    *,
    min_trade_notional: float | None = None,
    lot_size_by_symbol: Mapping[str, float] | None = None,
) -> BookPlan:
    """Plan a scaling rebalance over a position book (see the module docstring).

    :param book: the positions (not modified).
    :param inputs: the allocations.
    :param min_trade_notional: dust threshold in base currency (``None``/0 = off).
    :param lot_size_by_symbol: lot size (units) per symbol; applies at every venue.
    :returns: world and global deltas in columns.
    :raises PlanInputInvalid: when a figure overflows a float.
    """
    scales = compute_scales(book, inputs)
    n_keys = len(book.keys)
    key = np.asarray(book.key, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        move = book.qty * (scales.position_scale - 1.0)
    require_finite(move, field="positions", indexed=True)

    cells = group(scales.position_world * n_keys + key, size=len(scales.worlds) * n_keys)
    raw = cells.sum(move)
    require_finite(raw, field="positions", what="netted moves per world and symbol")
    gross = cells.sum(np.abs(book.qty))
    # An infinite gross would cancel every move at the cell as "noise" (a silent zero).
    require_finite(gross, field="positions", what="summed |qty| per world and symbol")
    delta_world = cells.ids // max(n_keys, 1)
    delta_key = cells.ids % max(n_keys, 1)
    lots = LotTable.for_symbols([symbol for _, symbol in book.keys], lot_size_by_symbol)
    qty = clean_quantities(raw, gross=gross, table=lots.take(delta_key))
    world_mark = weighted_mark(cells, qty=book.qty, mark=book.mark)
    keep = kept_not_dust(qty, world_mark, min_trade_notional)
    delta_world, delta_key, qty = delta_world[keep], delta_key[keep], qty[keep]

    summed = sum_by(delta_key, qty, size=n_keys)
    global_key = np.flatnonzero(np.bincount(delta_key, minlength=n_keys) > 0).astype(np.int64)
    key_gross = sum_by(key, np.abs(book.qty), size=n_keys)[global_key]
    global_raw = summed[global_key]
    # Capped: a gross summed past the float maximum (over several worlds; each world's is
    # finite) would make the tolerance inf and cancel every global delta silently.
    key_gross = np.minimum(key_gross, np.finfo(np.float64).max)
    global_raw = np.where(np.abs(global_raw) <= CANCEL_TOLERANCE * key_gross, 0.0, global_raw)
    table = lots.take(global_key)
    # A sum of whole lots is a whole number of lots: rint, not floor, absorbs the noise.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        lot_count = np.rint(np.abs(global_raw) / table.lot)
    # From MAX_LOTS lots on (or when the count overflows: a lot of 1e-320) the world
    # deltas were left off the lot grid (round_to_lot), so their sum is kept as it is.
    on_grid = table.has_lot & (lot_count < MAX_LOTS)
    global_qty = np.where(
        on_grid,
        from_lots(np.sign(global_raw), np.where(on_grid, lot_count, 0.0), table),
        np.where(table.has_lot, global_raw, clean_significant(global_raw)),
    )
    key_groups = group(key, size=n_keys)
    key_mark = np.zeros(n_keys)
    key_mark[key_groups.ids] = weighted_mark(key_groups, qty=book.qty, mark=book.mark)
    keep = kept_not_dust(global_qty, key_mark[global_key], min_trade_notional)
    require_finite(qty, field="positions", what="world deltas")
    require_finite(global_qty, field="positions", what="global deltas")
    return BookPlan(
        scales=scales,
        keys=book.keys,
        delta_world=delta_world,
        delta_key=delta_key,
        delta_qty=qty,
        global_key=global_key[keep],
        global_qty=global_qty[keep],
    )


def _symbol_deltas(
    keys: tuple[Key, ...], key_index: IntArray, qty: FloatArray
) -> list[SymbolDelta]:
    # One object per output delta; the wire model validates symbol, venue and finiteness.
    return [
        SymbolDelta(symbol=keys[k][1], venue=keys[k][0], delta_qty=q)
        for k, q in zip(key_index.tolist(), qty.tolist(), strict=True)
    ]


def to_response(
    plan: BookPlan, *, overlay_deltas: list[OverlayDelta] | None = None
) -> MultiWorldRebalanceResponse:
    """Render a :class:`BookPlan` as a v1-shaped response (``schema_version=1``).

    ``alpha_metrics`` and ``rebalance_intent`` stay ``None`` (the WorldService adds them).
    """
    scales = plan.scales
    per_world: dict[str, RebalancePlan] = {}
    for w, world in enumerate(scales.worlds):
        rows = plan.world_rows(w)
        per_world[world] = RebalancePlan(
            world_id=world,
            scale_world=float(scales.scale_world[w]),
            scale_by_strategy=scales.scale_by_strategy(w),
            deltas=_symbol_deltas(plan.keys, plan.delta_key[rows], plan.delta_qty[rows]),
        )
    return MultiWorldRebalanceResponse(
        schema_version=1,
        per_world=per_world,
        global_deltas=_symbol_deltas(plan.keys, plan.global_key, plan.global_qty),
        overlay_deltas=overlay_deltas,
    )


def allocation_inputs(request: MultiWorldRebalanceRequest) -> AllocationInputs:
    """The allocation fields of a request."""
    return AllocationInputs(
        total_equity=request.total_equity,
        world_alloc_before=request.world_alloc_before,
        world_alloc_after=request.world_alloc_after,
        strategy_alloc_before_total=request.strategy_alloc_before_total,
        strategy_alloc_after_total=request.strategy_alloc_after_total,
    )


def check_mode(request: MultiWorldRebalanceRequest) -> None:
    """Refuse hybrid (501) and overlay without a configuration (422)."""
    if request.mode == RebalanceMode.HYBRID:
        raise RebalanceModeUnsupported(mode="hybrid")
    if request.mode == RebalanceMode.OVERLAY and request.overlay is None:
        raise OverlayConfigRequired(field="overlay")


def plan_rebalance(request: MultiWorldRebalanceRequest) -> MultiWorldRebalanceResponse:
    """Plan a multi-world rebalance (SPEC 3).

    Scaling mode nets position moves into per-world and global deltas. Overlay mode
    keeps the per-world scales, leaves every ``deltas`` list and ``global_deltas`` empty
    and puts one instrument trade per world in ``overlay_deltas``
    (:func:`~qmtl.engine.overlay.plan_overlay`). ``per_world`` lists every planned world
    ordered by id. The response is v1-shaped: ``schema_version=1``, ``alpha_metrics`` and
    ``rebalance_intent`` are ``None``.

    :param request: a validated request (not modified).
    :returns: the plan.
    :raises RebalanceModeUnsupported: mode ``hybrid``.
    :raises OverlayConfigRequired: mode ``overlay`` without ``overlay``.
    :raises OverlayConfigInvalid: a world that needs an overlay trade has no instrument,
        or the instrument has no price.
    :raises PlanInputInvalid: figures that overflow a float.
    """
    check_mode(request)
    book = PositionBook.from_positions(request.positions)
    inputs = allocation_inputs(request)
    if request.mode == RebalanceMode.OVERLAY and request.overlay is not None:
        scales = compute_scales(book, inputs)
        overlay = plan_overlay(
            scales, request.overlay, lot_size_by_symbol=request.lot_size_by_symbol
        )
        plan = BookPlan.without_deltas(scales, book.keys)
        return to_response(plan, overlay_deltas=overlay)
    plan = plan_book(
        book,
        inputs,
        min_trade_notional=request.min_trade_notional,
        lot_size_by_symbol=request.lot_size_by_symbol,
    )
    return to_response(plan)
