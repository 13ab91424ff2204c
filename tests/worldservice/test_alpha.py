"""v2 ``alpha_metrics``: computed from ``alpha_series`` with the SDK's function, zeros
without data, an entry for every world and every strategy of it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

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


async def test_coverage_reports_observations_and_undefined_keys(sqlite_dsn: str) -> None:
    # w1: 8 returns, no missing -> n = 8, everything defined (it has gains and losses).
    # s2 in w1: 5 entries, one null -> n = 4.
    # s1 in w1: pnl 3000, 1500 on B = 1e6 x 0.3 = 300000 -> two gains, no loss:
    #   profit_factor undefined, max_drawdown 0 -> car_mdd and rar_mdd undefined.
    request = body(
        schema_version=2,
        alpha_series={
            "per_world": {"w1": {"returns": W1_RETURNS}},
            "per_strategy": {"s2": {"w1": {"returns": S2_RETURNS}},
                             "s1": {"w1": {"pnl": [3000.0, 1500.0]}}},
        },
    )
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        served = (await ws.client.post("/rebalancing/plan", json=request)).json()
    coverage = served["alpha_metrics"]["coverage"]
    everything = list(ALPHA_METRIC_KEYS)
    assert coverage["per_world"] == {
        "w1": {"observations": 8, "undefined": []},
        "w2": {"observations": 0, "undefined": everything},
    }
    assert coverage["per_strategy"] == {
        "s1": {"w1": {"observations": 2, "undefined": [
            "alpha_performance.profit_factor", "alpha_performance.car_mdd",
            "alpha_performance.rar_mdd"]}},
        "s2": {"w1": {"observations": 4, "undefined": []}},
        "s3": {"w2": {"observations": 0, "undefined": everything}},
    }
    # 3000/300000 = 0.01, 1500/303000: both gains, win ratio 1
    assert served["alpha_metrics"]["per_strategy"]["s1"]["w1"][
        "alpha_performance.win_ratio"] == 1.0


async def test_v1_has_no_coverage(sqlite_dsn: str) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        served = (await ws.client.post("/rebalancing/plan", json=body(schema_version=1))).json()
    assert "alpha_metrics" not in served


@pytest.mark.parametrize(
    ("alpha_series", "loc", "words"),
    [
        # w3 is planned (it has an allocation after) but has none before: B = 0
        ({"per_world": {"w3": {"pnl": [100.0, -50.0]}}},
         ["body", "alpha_series", "per_world", "w3", "pnl"], "world_alloc_before[w3]"),
        # an equity curve touching 0 before its end
        ({"per_world": {"w1": {"equity": [100.0, 0.0, 10.0]}}},
         ["body", "alpha_series", "per_world", "w1", "equity", 1], "equity[1]"),
        # s1 loses its whole capital base (B = 300000) and trades on
        ({"per_strategy": {"s1": {"w1": {"pnl": [-300000.0, 10.0]}}}},
         ["body", "alpha_series", "per_strategy", "s1", "w1", "pnl", 1], "pnl[1]"),
    ],
)
async def test_unusable_series_is_a_422_naming_it(
    sqlite_dsn: str, alpha_series: dict[str, Any], loc: list[Any], words: str
) -> None:
    request = body(schema_version=2, alpha_series=alpha_series,
                   world_alloc_after={"w1": 0.2, "w2": 0.3, "w3": 0.1})
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        for route in ("/rebalancing/plan", "/rebalancing/apply"):
            answer = await ws.client.post(route, json=request)
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["detail"]
            assert error["loc"] == loc
            assert words in error["msg"]
            assert error["type"] == "value_error"


async def test_infinite_series_values_are_a_422(sqlite_dsn: str) -> None:
    raw = ('{"total_equity": 1000, "world_alloc_before": {"w1": 0.5},'
           ' "world_alloc_after": {"w1": 0.5}, "schema_version": 2,'
           ' "alpha_series": {"per_world": {"w1": {"returns": [0.1, 1e999]}}}}')
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        answer = await ws.client.post("/rebalancing/plan", content=raw,
                                      headers={"content-type": "application/json"})
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"][:6] == ["body", "alpha_series", "per_world", "w1", "returns", 1]
