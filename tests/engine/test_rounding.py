"""Lot rounding and float-noise cleaning."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qmtl.engine.rounding import (
    LotTable,
    clean_quantities,
    clean_significant,
    lot_decimals,
    round_to_lot,
)


def rounded(value: float, lot: float) -> float:
    return float(round_to_lot(np.array([value]), LotTable.from_lots([lot]))[0])


def test_examples_from_the_spec() -> None:
    assert rounded(0.3, 0.1) == 0.3  # 0.3 / 0.1 = 2.9999999999999996 -> 3 lots, no artefact
    assert rounded(-0.3333, 0.001) == -0.333
    assert rounded(0.30000000000000004, 0.1) == 0.3
    assert rounded(12.0, 5.0) == 10.0
    assert rounded(0.8, 0.25) == 0.75
    assert rounded(0.049, 0.05) == 0.0
    assert rounded(-7.0, 2.0) == -6.0  # toward zero, not floor
    assert float(clean_significant(np.array([-0.49999999999999994]))[0]) == -0.5


def test_beyond_float_resolution_values_are_unchanged() -> None:
    # 720575940.65625 / 1e-8 = 7.2e16 lots > 2**52: the float spacing (1.2e-7) exceeds the lot.
    assert rounded(720575940.65625, 1e-8) == 720575940.65625


def test_lot_decimals() -> None:
    assert [lot_decimals(x) for x in (0.001, 0.25, 5.0, 10.0, 2.5e-05, 1.0)] == [3, 2, 0, 0, 6, 0]


def test_clean_significant_keeps_twelve_digits() -> None:
    values = np.array([123456789012345.0, 0.1 + 0.2, 1e-300, 0.0, 1.23456789012e-5, -7.0])
    assert clean_significant(values).tolist() == [
        123456789012000.0,
        0.3,
        1e-300,  # outside the cleaned range: unchanged
        0.0,
        1.23456789012e-5,
        -7.0,
    ]


def test_clean_quantities_cancels_noise() -> None:
    # |raw| <= 1e-9 * gross is zero; above is kept (lot or 12 digits).
    table = LotTable.from_lots([None, None, 0.1])
    raw = np.array([1e-10, 2e-9, 0.30000000000000004])
    out = clean_quantities(raw, gross=np.array([1.0, 1.0, 1.0]), table=table)
    assert out.tolist() == [0.0, 2e-9, 0.3]


def test_inputs_are_not_modified() -> None:
    values = np.array([0.3333, -0.49999999999999994])
    values.flags.writeable = False
    round_to_lot(values, LotTable.from_lots([0.001, None]))
    clean_significant(values)
    assert values.tolist() == [0.3333, -0.49999999999999994]


lots = st.sampled_from([0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 5.0, 100.0, 1e-8, 0.3])
values = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(value=values, lot=lots)
def test_lot_rounding_never_grows_and_gives_a_lot_multiple(value: float, lot: float) -> None:
    assume(abs(value) / lot < 2.0**50)  # beyond ~2**52 lots values are returned unchanged
    result = rounded(value, lot)
    # Never larger than the input (up to the documented 1e-9-lot float tolerance).
    assert abs(result) <= abs(value) + 1e-9 * lot
    # Less than one lot is given up.
    assert abs(value) - abs(result) < lot * (1 + 1e-9)
    # Same sign (or zero).
    assert result == 0 or (result > 0) == (value > 0)
    # A whole number of lots, written with at most the lot's decimals.
    lots_count = Decimal(repr(result)) / Decimal(repr(lot))
    assert lots_count == lots_count.to_integral_value()


@settings(max_examples=300, derandomize=True, deadline=None)
@given(value=values)
def test_clean_significant_is_idempotent_and_close(value: float) -> None:
    once = float(clean_significant(np.array([value]))[0])
    assert float(clean_significant(np.array([once]))[0]) == once
    assert abs(once - value) <= 1e-11 * abs(value)
