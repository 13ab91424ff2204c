"""Properties of alpha_performance that hold for every input (SPEC 2.4)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtl.contracts import ALPHA_METRIC_KEYS
from qmtl.engine.alpha import alpha_performance, alpha_performance_detail

# No timing in these tests: deadline off (the first call may pay numpy's warm-up).
PROPERTY = settings(max_examples=300, deadline=None)

any_finite = st.floats(allow_nan=False, allow_infinity=False)
realistic = st.floats(min_value=-1.5, max_value=3.0, allow_nan=False)
missing = st.one_of(st.none(), st.just(float("nan")))

any_series = st.lists(st.one_of(any_finite, missing), max_size=60)
realistic_series = st.lists(st.one_of(realistic, missing), max_size=80)
small_rate = st.floats(min_value=-0.01, max_value=0.01, allow_nan=False)
periods = st.sampled_from([1, 12, 52, 252, 365, 8760])


@PROPERTY
@given(returns=any_series, periods_per_year=periods)
def test_every_value_is_a_finite_float(returns: list[float | None], periods_per_year: int) -> None:
    result = alpha_performance_detail(returns, periods_per_year=periods_per_year)
    assert tuple(result.metrics) == ALPHA_METRIC_KEYS
    for key, value in result.metrics.items():
        assert type(value) is float and math.isfinite(value), (key, value)
    for key in result.undefined:
        assert result.metrics[key] == 0.0
    assert result.observations == sum(v is not None and not math.isnan(v) for v in returns)


@PROPERTY
@given(returns=realistic_series, risk_free=small_rate, transaction_cost=small_rate)
def test_bounds_with_costs(
    returns: list[float | None], risk_free: float, transaction_cost: float
) -> None:
    m = alpha_performance(returns, risk_free=risk_free, transaction_cost=transaction_cost)
    assert -1.0 <= m["alpha_performance.max_drawdown"] <= 0.0
    assert 0.0 <= m["alpha_performance.win_ratio"] <= 1.0
    assert m["alpha_performance.profit_factor"] >= 0.0
    assert all(math.isfinite(v) for v in m.values())


@PROPERTY
@given(returns=any_series)
def test_max_drawdown_is_within_minus_one_and_zero(returns: list[float | None]) -> None:
    assert -1.0 <= alpha_performance(returns)["alpha_performance.max_drawdown"] <= 0.0


@PROPERTY
@given(
    returns=st.lists(any_finite, max_size=40),
    gaps=st.lists(st.tuples(st.integers(min_value=0, max_value=40), missing), max_size=10),
)
def test_missing_values_anywhere_change_nothing(
    returns: list[float], gaps: list[tuple[int, float | None]]
) -> None:
    gappy: list[float | None] = list(returns)
    for position, value in gaps:
        gappy.insert(min(position, len(gappy)), value)
    dense = alpha_performance_detail(returns)
    assert alpha_performance_detail(gappy) == dense


@PROPERTY
@given(returns=st.lists(st.floats(min_value=-0.5, max_value=0.5), min_size=1, max_size=200))
def test_max_drawdown_matches_a_plain_cumprod(returns: list[float]) -> None:
    # independent recomputation: wealth by cumprod, running peak seeded with W0 = 1
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(returns))))
    expected = float(np.min(wealth / np.maximum.accumulate(wealth) - 1.0))
    got = alpha_performance(returns)["alpha_performance.max_drawdown"]
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)


@PROPERTY
@given(returns=st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=2, max_size=200))
def test_counts_match_plain_numpy(returns: list[float]) -> None:
    x = np.asarray(returns)
    m = alpha_performance(x)
    nonzero = np.count_nonzero(x)
    if nonzero:
        assert m["alpha_performance.win_ratio"] == np.count_nonzero(x > 0) / nonzero
    if np.any(x < 0):
        expected_pf = float(x[x > 0].sum()) / abs(float(x[x < 0].sum()))
        if math.isinf(expected_pf):  # subnormal losses: documented undefined default
            expected_pf = 0.0
        assert math.isclose(m["alpha_performance.profit_factor"], expected_pf, rel_tol=1e-9)
    else:
        assert m["alpha_performance.profit_factor"] == 0.0
