"""Turning deltas into venue orders (SPEC 4), in columns.

For each row (a delta at key ``k = (venue, symbol)`` with the holder's own net position
``p`` there) under policy ``P = policies[venue]`` (else ``default_policy``; a key without
venue always uses ``default_policy``):

1. ``q`` = the delta rounded toward zero to ``P.lot_size`` (artefact-free); zero -> dropped.
2. dropped when ``|q * mark| < P.min_notional`` (base currency, strictly below).
3. ``side = "buy"`` if ``q > 0`` else ``"sell"``; ``time_in_force = "IOC"`` if
   ``P.requires_ioc`` else ``P.default_time_in_force``.
4. ``reduce_only`` (only when ``P.supports_reduce_only``; otherwise never set): ``True``
   exactly when the order moves ``p`` toward zero without crossing it — a sell with
   ``0 < |q| <= p`` or a buy with ``q <= |p|`` (1e-9 relative tolerance); otherwise omitted.
   An order that would cross zero (``|q| > |p|``, opposite signs) is split into a
   reduce-only part ``c = -p`` rounded toward zero to the lot (closing) and an opening part
   ``q - c`` without the flag. It stays one unflagged order when either part would be zero
   or below ``P.min_notional``. A venue without reduce-only support gets one order.
5. ``client_order_id = "q" + sha256(f"{prefix}|{venue}|{symbol}|{q!r}")[:31]``; the two
   parts of a split order append ``|close`` / ``|open`` to the hashed text. The same inputs
   always give the same id; make ``prefix`` unique per batch (run, scope, world, strategy).

Cost O(rows) array work plus one dictionary and one SHA-256 per order (no model object
per order: callers validate the whole response once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from qmtl.contracts import Order, SymbolDelta
from qmtl.contracts.errors import PlanInputInvalid

from .book import FloatArray, IntArray, Key
from .rounding import LotTable, clean_significant, from_lots, lots_of, round_to_lot
from .scales import require_finite

__all__ = [
    "REDUCE_ONLY_TOLERANCE",
    "OrderDict",
    "VenuePolicy",
    "build_orders",
    "client_order_id",
    "order_dicts",
]

REDUCE_ONLY_TOLERANCE = 1e-9
"""A reducing order may exceed the position by this fraction of it (float noise)."""

OrderDict = dict[str, Any]
"""One order in wire shape (``venue``/``reduce_only`` absent when not set)."""

_ORDERS = TypeAdapter(list[Order])


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


def client_order_id(
    *, id_prefix: str, venue: str | None, symbol: str, quantity: float, part: str | None = None
) -> str:
    """Deterministic order id: ``"q"`` + 31 hex chars of a SHA-256 (32 characters)."""
    text = f"{id_prefix}|{venue}|{symbol}|{quantity!r}"
    if part is not None:
        text += f"|{part}"
    return "q" + hashlib.sha256(text.encode()).hexdigest()[:31]


def _key_policies(
    keys: Sequence[Key], policies: Mapping[str, VenuePolicy], default_policy: VenuePolicy
) -> tuple[LotTable, FloatArray, NDArray[np.bool_], list[str]]:
    """Per key: lot table, min notional, reduce-only support and time in force."""
    chosen = [
        default_policy if venue is None else policies.get(venue, default_policy)
        for venue, _ in keys
    ]
    return (
        LotTable.from_lots([p.lot_size for p in chosen]),
        np.array([p.min_notional for p in chosen], dtype=np.float64),
        np.array([p.supports_reduce_only for p in chosen], dtype=bool),
        ["IOC" if p.requires_ioc else p.default_time_in_force for p in chosen],
    )


def order_dicts(
    *,
    keys: Sequence[Key],
    key: IntArray,
    qty: FloatArray,
    mark: FloatArray,
    position: FloatArray,
    batch: IntArray,
    prefixes: Sequence[str],
    policies: Mapping[str, VenuePolicy],
    default_policy: VenuePolicy,
) -> tuple[list[OrderDict], IntArray]:
    """Orders for delta rows under venue policies (see the module docstring).

    :param keys: the netting keys the rows index.
    :param key: per row, its key (index into ``keys``).
    :param qty: per row, the signed delta (units).
    :param mark: per row, the price (base currency per unit; NaN = unknown), needed when
        the key's policy has a ``min_notional``.
    :param position: per row, the holder's own net position at the key (units).
    :param batch: per row, its batch (index into ``prefixes``).
    :param prefixes: the client-order-id namespace of each batch.
    :param policies: policy per venue.
    :param default_policy: policy for unknown venues and venue-less keys.
    :returns: the orders in row order (a split row gives its closing part first) and the
        batch of each order.
    :raises PlanInputInvalid: a ``min_notional`` check needs a mark that is unknown.
    """
    key = np.asarray(key, dtype=np.int64)
    lots, min_notional, supports, tif = _key_policies(keys, policies, default_policy)
    table = lots.take(key)
    q = round_to_lot(np.asarray(qty, dtype=np.float64), table)
    require_finite(q, field="orders (quantities)")
    floor = min_notional[key]
    blind = (floor > 0) & np.isnan(mark) & (q != 0)
    if blind.any():
        venue, symbol = keys[int(key[np.flatnonzero(blind)[0]])]
        raise PlanInputInvalid(
            f"no mark for {symbol!r} at venue {venue!r}: cannot apply the venue's min_notional",
            field="marks",
            symbol=symbol,
            venue=venue,
        )
    # A notional that overflows to inf is far above any floor: kept, as it should be.
    with np.errstate(invalid="ignore", over="ignore"):
        keep = (q != 0) & ~((floor > 0) & (np.abs(q * mark) < floor))
    rows = np.flatnonzero(keep)
    q, p, table, floor = q[rows], np.asarray(position)[rows], table.take(rows), floor[rows]
    row_mark = np.asarray(mark)[rows]

    supported = supports[key[rows]]
    # Signs, not the product q * p: that overflows for huge and underflows to 0 for
    # subnormal figures (a reducing order would lose its flag).
    reducing = supported & (np.sign(q) * np.sign(p) < 0)
    with np.errstate(over="ignore"):
        within = np.abs(q) <= np.abs(p) * (1 + REDUCE_ONLY_TOLERANCE)
    close, opening = _crossing_parts(q, p, table)
    with np.errstate(invalid="ignore", over="ignore"):
        too_small = (floor > 0) & (
            (np.abs(close * row_mark) < floor) | (np.abs(opening * row_mark) < floor)
        )
    split = reducing & ~within & (close != 0) & (opening != 0) & ~too_small
    flag = reducing & within

    # The one loop per order: plain dicts and one SHA-256 each (see client_order_id).
    orders: list[OrderDict] = []
    order_batch: list[int] = []
    sha256 = hashlib.sha256
    key_text = [f"|{venue}|{symbol}|" for venue, symbol in keys]
    for k, b, quantity, c, o, is_split, is_reduce in zip(
        key[rows].tolist(),
        np.asarray(batch)[rows].tolist(),
        q.tolist(),
        close.tolist(),
        opening.tolist(),
        split.tolist(),
        flag.tolist(),
        strict=True,
    ):
        venue, symbol = keys[k]
        if is_split:
            orders.append(_order(prefixes[b], venue, symbol, c, tif[k], True, "close"))
            orders.append(_order(prefixes[b], venue, symbol, o, tif[k], None, "open"))
            order_batch += [b, b]
            continue
        order: OrderDict = {
            "symbol": symbol,
            "quantity": quantity,
            "side": "buy" if quantity > 0 else "sell",
            "time_in_force": tif[k],
        }
        if venue is not None:
            order["venue"] = venue
        if is_reduce:
            order["reduce_only"] = True
        # Same text as client_order_id(): f"{prefix}|{venue}|{symbol}|{quantity!r}".
        text = prefixes[b] + key_text[k] + repr(quantity)
        order["client_order_id"] = "q" + sha256(text.encode()).hexdigest()[:31]
        orders.append(order)
        order_batch.append(b)
    return orders, np.asarray(order_batch, dtype=np.int64)


def _crossing_parts(q: FloatArray, p: FloatArray, table: LotTable) -> tuple[FloatArray, FloatArray]:
    """The closing part ``-p`` (toward zero to the lot) and the opening rest ``q - close``."""
    has_lot = table.has_lot
    close_lots = lots_of(p, table)
    order_lots = lots_of(q, table)
    sign = np.sign(q)
    with np.errstate(invalid="ignore"):
        lot_close = from_lots(sign, close_lots, table)
        lot_open = from_lots(sign, order_lots - close_lots, table)
    close = np.where(has_lot, lot_close, clean_significant(-p))
    # Only rows that reduce (q and p of opposite signs) are split, and there |q - close|
    # <= |q|; the same-sign rows may overflow here, and their parts are never used.
    with np.errstate(over="ignore"):
        rest = q - close
    opening = np.where(has_lot, lot_open, clean_significant(rest))
    return close, opening


def _order(
    prefix: str,
    venue: str | None,
    symbol: str,
    quantity: float,
    time_in_force: str,
    reduce_only: bool | None,
    part: str | None = None,
) -> OrderDict:
    order: OrderDict = {
        "symbol": symbol,
        "quantity": quantity,
        "side": "buy" if quantity > 0 else "sell",
        "time_in_force": time_in_force,
    }
    if venue is not None:
        order["venue"] = venue
    if reduce_only:
        order["reduce_only"] = True
    order["client_order_id"] = client_order_id(
        id_prefix=prefix, venue=venue, symbol=symbol, quantity=quantity, part=part
    )
    return order


def build_orders(
    deltas: Sequence[SymbolDelta],
    *,
    marks: Mapping[Key, float],
    exposure: Mapping[Key, float],
    policies: Mapping[str, VenuePolicy],
    default_policy: VenuePolicy,
    id_prefix: str,
) -> list[Order]:
    """Orders for ``deltas`` of one batch (see the module docstring).

    :param deltas: signed quantities per (venue, symbol).
    :param marks: price per key (base currency per unit), needed when a policy has a
        ``min_notional``.
    :param exposure: the holder's own net position per key (units; missing = 0).
    :param policies: policy per venue.
    :param default_policy: policy for unknown venues and venue-less deltas.
    :param id_prefix: namespace of the deterministic client order ids.
    :returns: orders in the order of ``deltas`` (dropped ones omitted, split ones as two).
    :raises PlanInputInvalid: a ``min_notional`` check needs a mark that ``marks`` lacks.
    """
    keys: list[Key] = [(d.venue, d.symbol) for d in deltas]
    orders, _ = order_dicts(
        keys=keys,
        key=np.arange(len(keys), dtype=np.int64),
        qty=np.array([d.delta_qty for d in deltas], dtype=np.float64),
        mark=np.array([marks.get(k, np.nan) for k in keys], dtype=np.float64),
        position=np.array([exposure.get(k, 0.0) for k in keys], dtype=np.float64),
        batch=np.zeros(len(keys), dtype=np.int64),
        prefixes=[id_prefix],
        policies=policies,
        default_policy=default_policy,
    )
    return _ORDERS.validate_python(orders)
