"""alpha_performance agrees with empyrical-reloaded and quantstats on committed series (SPEC 2.4).

Reference calls (read from the installed sources, empyrical-reloaded 0.7 / quantstats 0.0.86):

* ``empyrical.sharpe_ratio(x, risk_free=rf, annualization=P)``: mean(x − rf) / nanstd(x − rf,
  ddof=1) · √P — our sharpe.
* ``empyrical.max_drawdown(x)``: min of cum/running-max − 1 with a starting anchor in the
  running max — our max_drawdown (peak includes W₀ = 1).
* ``empyrical.calmar_ratio(x, annualization=P)``: annual_return / |max_drawdown| with
  annual_return = W_n^(P/len) − 1 — our car_mdd (len counts NaN there, so we pass the
  NaN-free series).
* ``quantstats.stats.win_rate(Series(x))``: #(x > 0) / #(x ≠ 0) after dropna — our win_ratio.
* ``quantstats.stats.profit_factor(Series(x))``: Σ x≥0 / |Σ x<0| — our profit_factor.

Neither library has a transaction cost, so x = r − tc is passed to them; only empyrical's Sharpe
takes a risk-free rate. The libraries are imported and called inside
``warnings.catch_warnings()`` (pytest turns warnings into errors, and their third-party imports
or pandas internals may warn); nothing is changed globally.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from qmtl.engine.alpha import alpha_performance, alpha_performance_detail
from tests.engine.data import load_returns

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import empyrical
    import pandas as pd  # type: ignore[import-untyped]
    import quantstats

RTOL = 1e-10
ATOL = 1e-13

# (csv, periods_per_year)
SERIES = [
    ("alpha_daily.csv", 252),
    ("alpha_heavy_tail.csv", 252),
    ("alpha_monthly.csv", 12),
    ("alpha_crash.csv", 252),
    ("alpha_gaps.csv", 252),
]
# (risk_free per period, transaction_cost per period)
COSTS = [(0.0, 0.0), (0.0001, 0.0), (0.0, 0.0003), (0.00015, 0.0002)]


def _reference(x: np.ndarray, *, periods_per_year: float, risk_free: float) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = pd.Series(x)
        return {
            "alpha_performance.sharpe": empyrical.sharpe_ratio(
                x, risk_free=risk_free, annualization=periods_per_year
            ),
            "alpha_performance.max_drawdown": empyrical.max_drawdown(x),
            "alpha_performance.car_mdd": empyrical.calmar_ratio(x, annualization=periods_per_year),
            "alpha_performance.win_ratio": quantstats.stats.win_rate(series),
            "alpha_performance.profit_factor": quantstats.stats.profit_factor(series),  # type: ignore[no-untyped-call]
        }


@pytest.mark.parametrize(("name", "periods_per_year"), SERIES)
@pytest.mark.parametrize(("risk_free", "transaction_cost"), COSTS)
def test_matches_empyrical_and_quantstats(
    name: str, periods_per_year: float, risk_free: float, transaction_cost: float
) -> None:
    raw = load_returns(name)
    observed = np.array([v for v in raw if v is not None])
    x = observed - transaction_cost

    ours = alpha_performance(
        raw,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
        transaction_cost=transaction_cost,
    )
    reference = _reference(x, periods_per_year=periods_per_year, risk_free=risk_free)

    for key, expected in reference.items():
        assert np.isfinite(expected), (key, expected)
        assert np.isclose(ours[key], expected, rtol=RTOL, atol=ATOL), (key, ours[key], expected)

    # rar_mdd has no library twin: calmar / exposure, exposure counted with plain numpy
    exposure = np.count_nonzero(x) / x.size
    assert np.isclose(
        ours["alpha_performance.rar_mdd"],
        reference["alpha_performance.car_mdd"] / exposure,
        rtol=RTOL,
        atol=ATOL,
    )


def test_fixtures_exercise_the_interesting_cases() -> None:
    # guard against a regenerated fixture losing what the parity test relies on
    daily = np.array(load_returns("alpha_daily.csv"), dtype=float)
    assert np.count_nonzero(daily == 0.0) > 20  # flat periods -> exposure < 1
    crash = alpha_performance(load_returns("alpha_crash.csv"))
    assert crash["alpha_performance.max_drawdown"] < -0.5
    assert crash["alpha_performance.car_mdd"] < 0  # negative CAGR
    gaps = alpha_performance_detail(load_returns("alpha_gaps.csv"))
    assert 400 < gaps.observations < 500


def test_gaps_are_dropped_not_zero_filled() -> None:
    raw = load_returns("alpha_gaps.csv")
    dense = [v for v in raw if v is not None]
    assert alpha_performance(raw) == alpha_performance(dense)
    zero_filled = alpha_performance([0.0 if v is None else v for v in raw])
    assert (
        zero_filled["alpha_performance.sharpe"]
        != alpha_performance(raw)["alpha_performance.sharpe"]
    )


def test_profit_factor_without_losses_differs_from_quantstats_on_purpose() -> None:
    # quantstats answers inf; SPEC 2.4 reports the documented finite default 0.0
    x = np.array([0.01, 0.02, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = quantstats.stats.profit_factor(pd.Series(x))  # type: ignore[no-untyped-call]
        assert pf == float("inf")
    assert alpha_performance(x)["alpha_performance.profit_factor"] == 0.0
