"""v2 ``alpha_metrics``: computed from ``alpha_series`` with the SDK's function, zeros
without data, an entry for every world and every strategy of it."""

from __future__ import annotations

import math

import numpy as np

from qmtl.contracts import ALPHA_METRIC_KEYS
from qmtl.engine.alpha import alpha_performance

from .conftest import body, make_settings, running

W1_RETURNS = [0.012, -0.004, 0.007, -0.011, 0.015, 0.002, -0.006, 0.009]
S2_RETURNS = [0.01, -0.02, 0.03, None, 0.005]


def _independent_sharpe(returns: list[float], periods: float) -> float:
    x = np.asarray(returns, dtype=float)
    return float(x.mean() / x.std(ddof=1) * math.sqrt(periods))


def _independent_max_drawdown(returns: list[float]) -> float:
    wealth = np.concatenate([[1.0], np.cumprod(1 + np.asarray(returns, dtype=float))])
    return float((wealth / np.maximum.accumulate(wealth) - 1).min())


async def test_metrics_equal_the_shared_function(sqlite_dsn: str) -> None:
    request = body(
        schema_version=2,
        alpha_series={
            "per_world": {"w1": {"returns": W1_RETURNS}},
            "per_strategy": {"s2": {"w1": {"returns": S2_RETURNS}}},
        },
    )
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        served = (await ws.client.post("/rebalancing/plan", json=request)).json()
    metrics = served["alpha_metrics"]
    expected_w1 = alpha_performance(W1_RETURNS, periods_per_year=252)
    assert metrics["per_world"]["w1"] == expected_w1
    expected_s2 = alpha_performance([r for r in S2_RETURNS if r is not None],
                                    periods_per_year=252)
    assert metrics["per_strategy"]["s2"]["w1"] == expected_s2
    # Independent recomputation of two metrics (plain numpy, SPEC 2.4 formulas).
    assert math.isclose(metrics["per_world"]["w1"]["alpha_performance.sharpe"],
                        _independent_sharpe(W1_RETURNS, 252), rel_tol=1e-12)
    assert math.isclose(metrics["per_world"]["w1"]["alpha_performance.max_drawdown"],
                        _independent_max_drawdown(W1_RETURNS), rel_tol=1e-12)
    # Everything without data is zero: world w2 and the strategies without a series.
    zeros = dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)
    assert metrics["per_world"]["w2"] == zeros
    assert metrics["per_strategy"]["s1"]["w1"] == zeros
    assert metrics["per_strategy"]["s3"]["w2"] == zeros


async def test_periods_per_year_comes_from_settings(sqlite_dsn: str) -> None:
    request = body(schema_version=2,
                   alpha_series={"per_world": {"w1": {"returns": W1_RETURNS}}})
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True, periods_per_year=12)
    async with running(settings) as ws:
        served = (await ws.client.post("/rebalancing/plan", json=request)).json()
    sharpe = served["alpha_metrics"]["per_world"]["w1"]["alpha_performance.sharpe"]
    assert math.isclose(sharpe, _independent_sharpe(W1_RETURNS, 12), rel_tol=1e-12)


async def test_without_series_every_value_is_zero(sqlite_dsn: str) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        served = (await ws.client.post("/rebalancing/plan", json=body(schema_version=2))).json()
    metrics = served["alpha_metrics"]
    assert set(metrics["per_world"]) == {"w1", "w2"}
    assert set(metrics["per_strategy"]) == {"s1", "s2", "s3"}
    assert set(metrics["per_strategy"]["s1"]) == {"w1"}
    assert set(metrics["per_strategy"]["s3"]) == {"w2"}
    values = [v for m in metrics["per_world"].values() for v in m.values()]
    values += [v for by_world in metrics["per_strategy"].values()
               for m in by_world.values() for v in m.values()]
    assert values and all(v == 0.0 for v in values)
    assert all(set(m) == set(ALPHA_METRIC_KEYS) for m in metrics["per_world"].values())


async def test_worlds_without_positions_get_entries(sqlite_dsn: str) -> None:
    request = body(schema_version=2, world_alloc_after={"w1": 0.2, "w2": 0.3, "w3": 0.1})
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        served = (await ws.client.post("/rebalancing/plan", json=request)).json()
    assert served["per_world"]["w3"]["deltas"] == []
    assert served["alpha_metrics"]["per_world"]["w3"] == dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)
