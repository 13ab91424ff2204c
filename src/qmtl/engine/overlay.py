"""Overlay planning: one instrument trade per world instead of scaling positions (SPEC 3).

For world ``w`` with scale ``gw`` and net notional ``N_w = sum(qty * mark)`` (base
currency), the overlay trade is

    T_w = (gw - 1) * N_w                         (base currency)
    q_w = T_w / price[instrument_by_world[w]]    (units of the instrument)

``T_w`` is treated as 0 when ``|T_w| <= 1e-9 * sum(|qty * mark|)`` (float noise) and such a
world needs no instrument. ``q_w`` is lot-rounded toward zero when ``lot_size_by_symbol``
has the instrument (else cleaned to 12 significant digits), dropped when
``|q_w * price| < overlay.min_order_notional`` (strictly below) and dropped when zero.
Cost O(worlds) after the scales.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from qmtl.contracts import OverlayConfig, OverlayDelta
from qmtl.contracts.errors import OverlayConfigInvalid

from .rounding import CANCEL_TOLERANCE, LotTable, clean_significant, round_to_lot
from .scales import Scales, require_finite

__all__ = ["overlay_price", "plan_overlay"]


def overlay_price(overlay: OverlayConfig, *, world_id: str) -> tuple[str, float]:
    """The instrument of ``world_id`` and its price (base currency per unit).

    :raises OverlayConfigInvalid: no instrument for the world, or no price for it.
    """
    instrument = overlay.instrument_by_world.get(world_id)
    if instrument is None:
        raise OverlayConfigInvalid(
            f"overlay.instrument_by_world has no instrument for world {world_id!r}",
            field="overlay.instrument_by_world",
            world_id=world_id,
        )
    price = overlay.price_by_symbol.get(instrument)
    if price is None:
        raise OverlayConfigInvalid(
            f"overlay.price_by_symbol has no price for {instrument!r} (world {world_id!r})",
            field="overlay.price_by_symbol",
            world_id=world_id,
            symbol=instrument,
        )
    return instrument, price


def plan_overlay(
    scales: Scales,
    overlay: OverlayConfig,
    *,
    lot_size_by_symbol: Mapping[str, float] | None = None,
) -> list[OverlayDelta]:
    """One overlay delta per world whose trade is non-zero (see the module docstring).

    :param scales: world scales and notionals of the request.
    :param overlay: instruments, prices and the minimum order notional.
    :param lot_size_by_symbol: lot sizes (units) per symbol.
    :returns: deltas sorted by (world_id, symbol).
    :raises OverlayConfigInvalid: a world needing a trade has no instrument or price.
    :raises PlanInputInvalid: a figure overflows a float.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        trade = (scales.scale_world - 1.0) * scales.world_notional
    require_finite(trade, field="positions", what="overlay trade notional per world")
    trade = np.where(np.abs(trade) <= CANCEL_TOLERANCE * scales.world_gross, 0.0, trade)
    deltas: list[OverlayDelta] = []
    for w in np.flatnonzero(trade != 0).tolist():
        world = scales.worlds[w]
        instrument, price = overlay_price(overlay, world_id=world)
        with np.errstate(over="ignore"):
            raw = np.array([trade[w] / price])
        require_finite(raw, field=f"overlay.price_by_symbol.{instrument}",
                       what=f"overlay trade of world {world} / price")
        table = LotTable.for_symbols([instrument], lot_size_by_symbol)
        qty = float(np.where(table.has_lot, round_to_lot(raw, table), clean_significant(raw))[0])
        if qty == 0 or abs(qty * price) < (overlay.min_order_notional or 0.0):
            continue
        deltas.append(OverlayDelta(world_id=world, symbol=instrument, delta_qty=qty))
    deltas.sort(key=lambda d: (d.world_id, d.symbol))
    return deltas
