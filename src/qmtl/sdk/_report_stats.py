"""Tear-sheet statistics beyond SPEC 2.4: CAGR, volatility, Sortino, rolling windows, months.

Notation as in SPEC 2.4: simple per-period returns r₁…rₙ (gaps already dropped), P periods per
year, rf per period, Wₜ = Πₛ≤ₜ (1 + rₛ). Definitions (the same as empyrical-reloaded's
``annual_return``, ``annual_volatility`` and ``sortino_ratio``; the tests check them against
those libraries' committed numbers):

* CAGR = Wₙ^(P/n) − 1 (−1 after ruin);
* volatility = std(r, ddof = 1) · √P;
* Sortino = mean(r − rf) · √P / √(mean(min(r − rf, 0)²)) — the downside deviation counts every
  period, not only the losing ones.

Undefined values are reported as 0.0 (like SPEC 2.4): CAGR and volatility with fewer than 1/2
periods, Sortino without a period below rf. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "MonthlyReturns",
    "annual_volatility",
    "cagr",
    "monthly_returns",
    "rolling_sharpe",
    "rolling_volatility",
    "sortino",
]

FloatArray = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]


def cagr(returns: FloatArray, periods_per_year: float) -> float:
    """Wₙ^(P/n) − 1, computed in log space (no overflow for long series); 0.0 for n = 0."""
    n = returns.size
    if n == 0:
        return 0.0
    if (returns <= -1.0).any():
        return -1.0
    log_growth = float(np.sum(np.log1p(returns))) * periods_per_year / n
    # A wealth that grows past float64 per year is not a number anyone can read: cap it.
    return math.expm1(min(log_growth, 700.0))


def annual_volatility(returns: FloatArray, periods_per_year: float) -> float:
    """std(r, ddof = 1) · √P; 0.0 for fewer than two periods."""
    if returns.size < 2:
        return 0.0
    return float(np.std(returns, ddof=1)) * math.sqrt(periods_per_year)


def sortino(returns: FloatArray, periods_per_year: float, risk_free: float = 0.0) -> float:
    """mean(r − rf) · √P / downside deviation; 0.0 when no period is below rf."""
    if returns.size == 0:
        return 0.0
    excess = returns - risk_free
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside <= 0.0:
        return 0.0
    return float(np.mean(excess)) * math.sqrt(periods_per_year) / downside


def _windows(returns: FloatArray, window: int) -> FloatArray:
    return np.lib.stride_tricks.sliding_window_view(returns, window)


def rolling_volatility(returns: FloatArray, window: int, periods_per_year: float) -> FloatArray:
    """Volatility of each trailing window of ``window`` periods; entry i ends at period
    ``window - 1 + i`` (empty when the series is shorter than the window)."""
    if window < 2 or returns.size < window:
        return np.empty(0)
    std: FloatArray = np.std(_windows(returns, window), axis=1, ddof=1)
    return std * math.sqrt(periods_per_year)


def rolling_sharpe(
    returns: FloatArray, window: int, periods_per_year: float, risk_free: float = 0.0
) -> FloatArray:
    """SPEC 2.4's Sharpe of each trailing window (0.0 where the window has no volatility)."""
    if window < 2 or returns.size < window:
        return np.empty(0)
    windows = _windows(returns - risk_free, window)
    mean = windows.mean(axis=1)
    std = windows.std(axis=1, ddof=1)
    # Relative tolerance as in SPEC 2.4: a flat window is "no volatility", not a huge ratio.
    flat = std <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
    safe = np.where(flat, 1.0, std)
    result: FloatArray = np.where(flat, 0.0, mean / safe * math.sqrt(periods_per_year))
    return result


@dataclass(frozen=True, slots=True)
class MonthlyReturns:
    """Compounded returns per calendar month: ``values[i, m]`` for ``years[i]``, month m + 1.

    NaN marks a month without a period. ``yearly[i]`` compounds the whole year ``years[i]``.
    """

    years: tuple[int, ...]
    values: FloatArray
    yearly: FloatArray


def monthly_returns(returns: FloatArray, dates: DateArray) -> MonthlyReturns:
    """Π(1 + r) − 1 over each calendar month (and year) of ``dates`` (one date per return)."""
    months = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    first_year = int(months.min() // 12) + 1970
    last_year = int(months.max() // 12) + 1970
    years = tuple(range(first_year, last_year + 1))
    log_sum = np.zeros((len(years), 12))
    seen = np.zeros((len(years), 12), dtype=bool)
    row = months // 12 + 1970 - first_year
    column = months % 12
    with np.errstate(divide="ignore"):
        # −inf from a return of −1 or worse (ruin): that month is −100 %
        logs = np.log1p(np.maximum(returns, -1.0))
    np.add.at(log_sum, (row, column), logs)
    seen[row, column] = True
    values = np.where(seen, np.expm1(log_sum), np.nan)
    yearly = np.where(seen.any(axis=1), np.expm1(log_sum.sum(axis=1)), np.nan)
    return MonthlyReturns(years=years, values=values, yearly=yearly)
