"""Shared-account figures for netted (global) deltas (SPEC 4).

With ``delta_k`` the netted quantity at key ``k`` (units), ``mark_k`` the ``|qty|``-weighted
mark of all worlds' positions at ``k`` (base currency per unit; the overlay price when no
position holds ``k``) and ``net_k`` the net quantity of all worlds at ``k``:

    gross_notional  = sum_k |delta_k * mark_k|                    (base currency)
    net_notional    = sum_k  delta_k * mark_k                     (base currency, signed)
    post_gross      = sum_k |(net_k + delta_k) * mark_k|          (base currency)
    margin_headroom = 1 - post_gross / total_equity               (ratio; < 0 = over-levered)

When ``total_equity == 0`` the headroom is 0.0 if ``post_gross > 0`` else 1.0. Sums use
``math.fsum``. Cost O(n + deltas).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qmtl.contracts import MultiWorldRebalanceRequest, SharedAccountSummary, SymbolDelta
from qmtl.contracts.errors import PlanInputInvalid

from .book import Key, PositionBook

__all__ = ["shared_account_figures"]


def shared_account_figures(
    request: MultiWorldRebalanceRequest, global_deltas: Sequence[SymbolDelta]
) -> SharedAccountSummary:
    """Gross, net and post-trade headroom of the netted deltas (see the module docstring).

    :param request: positions, total equity and (overlay mode) instrument prices.
    :param global_deltas: the netted deltas (several entries for one key are summed).
    :returns: the figures (finite floats).
    :raises PlanInputInvalid: a delta's key has no position and no overlay price, or the
        figures overflow a float.
    """
    book = PositionBook.from_positions(request.positions)
    marks = book.marks_by_key()
    net = book.net_qty_by_key()
    prices = request.overlay.price_by_symbol if request.overlay is not None else {}

    delta_by_key: dict[Key, list[float]] = {}
    for delta in global_deltas:
        key: Key = (delta.venue, delta.symbol)
        delta_by_key.setdefault(key, []).append(delta.delta_qty)
        if key not in marks:
            price = prices.get(delta.symbol)
            if price is None:
                raise PlanInputInvalid(
                    f"no mark for {delta.symbol!r} at venue {delta.venue!r}: no position "
                    "holds it and the overlay has no price",
                    field="global_deltas",
                    symbol=delta.symbol,
                    venue=delta.venue,
                )
            marks[key] = price
    moved = {key: math.fsum(values) for key, values in delta_by_key.items()}

    gross = math.fsum(abs(q * marks[k]) for k, q in moved.items())
    signed = math.fsum(q * marks[k] for k, q in moved.items())
    post_gross = math.fsum(
        abs((net.get(k, 0.0) + moved.get(k, 0.0)) * marks[k]) for k in set(net) | set(moved)
    )
    if request.total_equity > 0:
        headroom = 1.0 - post_gross / request.total_equity
    else:
        headroom = 0.0 if post_gross > 0 else 1.0
    figures = (gross, signed, post_gross, headroom)
    if not all(math.isfinite(value) for value in figures):
        raise PlanInputInvalid("the shared-account figures overflow a float", field="global_deltas")
    return SharedAccountSummary(gross_notional=gross, net_notional=signed, margin_headroom=headroom)
