"""Plans from columns: a position book built from factorised id columns, and the plan of a
request whose positions travel separately (the Arrow IPC path, docs/arrow.md).

The caller factorises each id column once (e.g. pyarrow's ``dictionary_encode``: distinct
values in first-seen order plus one integer code per row); this module turns those codes
into a :class:`~qmtl.engine.book.PositionBook` (``PositionBook.from_id_codes``) without a
Python object per position, and plans it with the same core as
:func:`~qmtl.engine.planning.plan_rebalance`. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse, RebalanceMode

from .book import PositionBook
from .overlay import plan_overlay
from .planning import BookPlan, allocation_inputs, check_mode, plan_book, to_response
from .scales import compute_scales

__all__ = ["ColumnPlan", "plan_columns"]


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
