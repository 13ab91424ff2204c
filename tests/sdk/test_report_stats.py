"""Tear-sheet statistics (``qmtl.sdk._report_stats``) against loops written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qmtl.sdk._report_stats import (
    annual_volatility,
    cagr,
    monthly_returns,
    rolling_sharpe,
    rolling_volatility,
    sortino,
)

RNG = np.random.default_rng(7)
R = RNG.normal(0.001, 0.01, 40)


def test_rolling_windows_equal_a_loop_over_slices() -> None:
    window, p = 10, 252.0
    vol = rolling_volatility(R, window, p)
    sharpe = rolling_sharpe(R, window, p, 0.0001)
    assert vol.size == sharpe.size == R.size - window + 1
    for i in range(vol.size):
        chunk = R[i : i + window]
        assert vol[i] == pytest.approx(np.std(chunk, ddof=1) * math.sqrt(p))
        excess = chunk - 0.0001
        assert sharpe[i] == pytest.approx(excess.mean() / excess.std(ddof=1) * math.sqrt(p))


def test_rolling_is_empty_for_a_short_series_and_zero_for_a_flat_window() -> None:
    assert rolling_volatility(R[:5], 10, 252).size == 0
    flat = np.concatenate([np.full(5, 0.01), R[:5]])
    assert rolling_sharpe(flat, 5, 252)[0] == 0.0


def test_monthly_returns_compound_each_calendar_month() -> None:
    dates = np.array(["2023-12-29", "2024-01-02", "2024-01-31", "2024-03-01"], "datetime64[D]")
    returns = np.array([0.01, 0.02, -0.01, 0.05])
    table = monthly_returns(returns, dates)
    assert table.years == (2023, 2024)
    assert table.values[0, 11] == pytest.approx(0.01)
    assert table.values[1, 0] == pytest.approx(1.02 * 0.99 - 1)
    assert math.isnan(table.values[1, 1])  # February: no period
    assert table.values[1, 2] == pytest.approx(0.05)
    assert table.yearly[1] == pytest.approx(1.02 * 0.99 * 1.05 - 1)
    assert np.isnan(table.values[0, :11]).all()


def test_ruin_and_undefined_values() -> None:
    assert cagr(np.array([0.1, -1.0, 0.2]), 252) == -1.0
    assert cagr(np.empty(0), 252) == 0.0
    assert annual_volatility(np.array([0.01]), 252) == 0.0
    assert sortino(np.array([0.01, 0.02]), 252) == 0.0  # no period below rf
    ruined = monthly_returns(
        np.array([0.1, -1.0]), np.array(["2024-01-02", "2024-01-03"], "datetime64[D]")
    )
    assert ruined.values[0, 0] == -1.0
