"""Artefact-free quantity cleaning: lot rounding toward zero and significant digits.

Every function is vectorised over float64 arrays (one lot per element, ``NaN`` = no lot)
and returns new arrays; inputs are never modified.

Lot rounding counts whole lots ``n = floor(|q| / lot + LOT_EPSILON)`` and rebuilds the value
from the lot's decimal representation, ``sign(q) * n * units / 10**d`` where
``lot = units / 10**d`` exactly in decimal (``0.001 -> 1 / 10**3``). A division by an exact
power of ten is correctly rounded, so ``3 * 0.1`` comes back as ``0.3``, not
``0.30000000000000004``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CANCEL_TOLERANCE",
    "LOT_EPSILON",
    "MAX_LOTS",
    "SIGNIFICANT_DIGITS",
    "LotTable",
    "clean_quantities",
    "clean_significant",
    "from_lots",
    "lot_decimals",
    "lots_of",
    "round_to_lot",
]

FloatArray = NDArray[np.float64]

LOT_EPSILON = 1e-9
"""Tolerance in lots: a quotient of 2.9999999999 lots counts as 3 (float noise, not a trade)."""

SIGNIFICANT_DIGITS = 12
"""Quantities without a lot size are cleaned to this many significant digits."""

CANCEL_TOLERANCE = 1e-9
"""A netted delta with ``|delta| <= CANCEL_TOLERANCE * sum(|qty| at the key)`` is zero."""

_MAX_EXACT_DECIMALS = 22  # 10**22 is the largest power of ten a float64 holds exactly
MAX_LOTS = 2.0**52
"""From this many lots on, a float's spacing exceeds the lot: values are left unchanged."""


def lot_decimals(lot: float) -> int:
    """Decimal places of the shortest representation of ``lot``.

    ``0.001 -> 3``, ``0.25 -> 2``, ``5.0 -> 0``, ``2.5e-05 -> 6``.

    :param lot: a positive, finite lot size.
    :returns: the number of digits after the decimal point (>= 0).
    """
    exponent = Decimal(repr(float(lot))).normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # only NaN/inf have a string exponent
        raise ValueError(f"lot size must be finite, got {lot!r}")
    return max(0, -exponent)


@dataclass(frozen=True, slots=True)
class LotTable:
    """Per-element lot facts: ``lot`` (NaN = no lot), ``units`` and ``scale`` = 10**d.

    ``lot == units / scale`` in decimal; ``scale`` is 0 when the lot has more than 22
    decimals (then values are rebuilt as ``n * lot``).
    """

    lot: FloatArray
    units: FloatArray
    scale: FloatArray

    @classmethod
    def from_lots(cls, lots: Sequence[float | None]) -> LotTable:
        """Build the table for a sequence of optional lot sizes (one per category).

        :param lots: lot size (> 0) or ``None`` for each category.
        :returns: a table indexed like ``lots``.
        """
        size = len(lots)
        lot = np.full(size, np.nan)
        units = np.zeros(size)
        scale = np.zeros(size)
        # One entry per category (symbol), not per position.
        cache: dict[float, tuple[float, float]] = {}
        for index, value in enumerate(lots):
            if value is None:
                continue
            if value not in cache:
                decimals = lot_decimals(value)
                if decimals <= _MAX_EXACT_DECIMALS:
                    power = 10.0**decimals
                    cache[value] = (float(round(value * power)), power)
                else:
                    cache[value] = (value, 0.0)
            lot[index] = value
            units[index], scale[index] = cache[value]
        return cls(lot=lot, units=units, scale=scale)

    @classmethod
    def for_symbols(
        cls, symbols: Sequence[str], lot_size_by_symbol: Mapping[str, float] | None
    ) -> LotTable:
        """The table for ``symbols`` under a ``{symbol: lot}`` map (missing = no lot).

        :param symbols: one symbol per category.
        :param lot_size_by_symbol: the request's lot map, or ``None``.
        :returns: a table indexed like ``symbols``.
        """
        lots = lot_size_by_symbol or {}
        return cls.from_lots([lots.get(symbol) for symbol in symbols])

    def take(self, index: NDArray[np.intp]) -> LotTable:
        """The table re-indexed per element (``table.take(key_of_each_delta)``)."""
        return LotTable(lot=self.lot[index], units=self.units[index], scale=self.scale[index])

    @property
    def has_lot(self) -> NDArray[np.bool_]:
        return ~np.isnan(self.lot)


def _rebuild(sign: FloatArray, lots_count: FloatArray, table: LotTable) -> FloatArray:
    exact = table.scale > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        value = np.where(
            exact,
            lots_count * table.units / np.where(exact, table.scale, 1.0),
            lots_count * table.lot,
        )
    return np.asarray(sign * value, dtype=np.float64)


def round_to_lot(values: FloatArray, table: LotTable) -> FloatArray:
    """Round each value toward zero to a whole number of its lot.

    ``n = floor(|q| / lot + LOT_EPSILON)``, result ``sign(q) * n * lot`` written without
    float artefacts (``0.3`` with lot ``0.1`` stays ``0.3``; ``-0.3333`` with lot ``0.001``
    gives ``-0.333``). Elements without a lot (NaN), or of ``MAX_LOTS`` lots or more (where
    the float spacing exceeds the lot), are returned unchanged. The result never has a
    larger magnitude than the input (beyond LOT_EPSILON lots of float noise).

    :param values: signed quantities (units of the instrument).
    :param table: the lot of each element.
    :returns: a new array.
    """
    values = np.asarray(values, dtype=np.float64)
    has_lot = table.has_lot
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        count = np.floor(np.abs(values) / table.lot + LOT_EPSILON)
    rounded = _rebuild(np.sign(values), count, table)
    return np.where(has_lot & (count < MAX_LOTS), rounded, values)


def lots_of(values: FloatArray, table: LotTable) -> FloatArray:
    """Whole lots toward zero, ``floor(|q| / lot + LOT_EPSILON)`` (NaN where no lot)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.floor(np.abs(np.asarray(values, dtype=np.float64)) / table.lot + LOT_EPSILON)


def from_lots(sign: FloatArray, count: FloatArray, table: LotTable) -> FloatArray:
    """``sign * count * lot`` without float artefacts (the inverse of :func:`lots_of`)."""
    return _rebuild(np.asarray(sign, dtype=np.float64), count, table)


def clean_significant(values: FloatArray, *, digits: int = SIGNIFICANT_DIGITS) -> FloatArray:
    """Round each value to ``digits`` significant digits (``-0.49999999999999994 -> -0.5``).

    ``k = digits - 1 - floor(log10|q|)``; the value is ``rint(q * 10**k) / 10**k`` (or
    ``rint(q / 10**-k) * 10**-k`` for large values), using only exact powers of ten.
    Values whose magnitude is outside ``[1e-11, 1e33]`` (for 12 digits) and zeros are
    returned unchanged.

    :param values: any finite floats.
    :param digits: significant digits to keep (1..15).
    :returns: a new array.
    """
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0)))
        shift = digits - 1 - exponent
        usable = (magnitude > 0) & (np.abs(shift) <= _MAX_EXACT_DECIMALS)
        shift = np.where(usable, shift, 0.0)
        power = 10.0 ** np.abs(shift)
        up = np.rint(values * power) / power
        down = np.rint(values / power) * power
    cleaned = np.where(shift >= 0, up, down)
    return np.where(usable & np.isfinite(cleaned), cleaned, values)


def clean_quantities(raw: FloatArray, *, gross: FloatArray, table: LotTable) -> FloatArray:
    """Clean netted quantities: cancel noise, then lot-round or keep 12 significant digits.

    1. ``|raw| <= CANCEL_TOLERANCE * gross`` becomes 0 (opposing moves that cancel),
       where ``gross`` is ``sum(|qty|)`` of the positions at the key.
    2. With a lot: :func:`round_to_lot`; without: :func:`clean_significant`.

    :param raw: netted signed quantities.
    :param gross: ``sum(|qty|)`` per element (same units).
    :param table: the lot of each element.
    :returns: a new array; zeros mean "no trade".
    """
    raw = np.asarray(raw, dtype=np.float64)
    cancelled = np.where(np.abs(raw) <= CANCEL_TOLERANCE * gross, 0.0, raw)
    return np.where(table.has_lot, round_to_lot(cancelled, table), clean_significant(cancelled))
