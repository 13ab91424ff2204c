"""Plans from columns: a position book built from factorised id columns, and the plan of a
request whose positions travel separately (the Arrow IPC path, docs/arrow.md).

The caller factorises each id column once (e.g. pyarrow's ``dictionary_encode``: distinct
values in first-seen order plus one integer code per row); this module turns those codes
into a :class:`~qmtl.engine.book.PositionBook` without a Python object per position, and
plans it with the same core as :func:`~qmtl.engine.planning.plan_rebalance`. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse, RebalanceMode

from .book import FloatArray, IntArray, Key, PositionBook, group
from .overlay import plan_overlay
from .planning import BookPlan, allocation_inputs, check_mode, plan_book, to_response
from .scales import compute_scales

__all__ = ["ColumnPlan", "book_from_columns", "plan_columns"]


def book_from_columns(
    *,
    worlds: Sequence[str],
    world: IntArray,
    strategies: Sequence[str],
    strategy: IntArray,
    venues: Sequence[str | None],
    venue: IntArray,
    symbols: Sequence[str],
    symbol: IntArray,
    qty: FloatArray,
    mark: FloatArray,
) -> PositionBook:
    """A book from codes into distinct (unsorted) categories, one code per position.

    ``venues`` may contain ``None`` (no venue). Netting keys are the (venue, symbol) pairs
    that occur, found by grouping ``venue * len(symbols) + symbol`` — O(n) integer work
    plus sorting the categories. Values must already be valid (finite qty, mark > 0).
    """
    n_symbols = max(len(symbols), 1)
    pairs = group(
        np.asarray(venue, dtype=np.int64) * n_symbols + np.asarray(symbol, dtype=np.int64),
        size=max(len(venues), 1) * n_symbols,
    )
    keys: list[Key] = [
        (venues[code // n_symbols], symbols[code % n_symbols]) for code in pairs.ids.tolist()
    ]
    return PositionBook.from_codes(
        worlds=worlds,
        strategies=strategies,
        keys=keys,
        world=world,
        strategy=strategy,
        key=pairs.inverse,
        qty=qty,
        mark=mark,
    )


@dataclass(frozen=True, slots=True, eq=False)
class ColumnPlan:
    """A plan in columns (``plan``) and its v1-shaped response *without* deltas
    (``skeleton``: every world's scales, ``overlay_deltas``; empty delta lists)."""

    plan: BookPlan
    skeleton: MultiWorldRebalanceResponse

    def response(self) -> MultiWorldRebalanceResponse:
        """The full v1-shaped response (one ``SymbolDelta`` object per delta)."""
        return to_response(self.plan, overlay_deltas=self.skeleton.overlay_deltas)


def plan_columns(request: MultiWorldRebalanceRequest, book: PositionBook) -> ColumnPlan:
    """Plan ``request`` with ``book`` as its positions (``request.positions`` is ignored).

    Same rules, checks and errors as :func:`~qmtl.engine.planning.plan_rebalance`.

    Raises:
        RebalanceModeUnsupported, OverlayConfigRequired, OverlayConfigInvalid,
        PlanInputInvalid: as :func:`~qmtl.engine.planning.plan_rebalance`.
    """
    check_mode(request)
    inputs = allocation_inputs(request)
    if request.mode == RebalanceMode.OVERLAY and request.overlay is not None:
        scales = compute_scales(book, inputs)
        overlay = plan_overlay(
            scales, request.overlay, lot_size_by_symbol=request.lot_size_by_symbol
        )
        plan = BookPlan.without_deltas(scales, book.keys)
        return ColumnPlan(plan=plan, skeleton=to_response(plan, overlay_deltas=overlay))
    plan = plan_book(
        book,
        inputs,
        min_trade_notional=request.min_trade_notional,
        lot_size_by_symbol=request.lot_size_by_symbol,
    )
    skeleton = to_response(BookPlan.without_deltas(plan.scales, plan.keys))
    return ColumnPlan(plan=plan, skeleton=skeleton)
