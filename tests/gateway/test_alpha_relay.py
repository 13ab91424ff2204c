"""Alpha data through a real gateway and WorldService (SPEC 2.4): the ``coverage`` block reaches
the caller, and a 422 for an unusable ``alpha_series`` is relayed unchanged — never retried as
v1, which would drop the data and answer 200."""

from __future__ import annotations

import httpx
import pytest

from ._support import scaling_request
from .conftest import Stack


@pytest.mark.parametrize("route", ["/rebalancing/plan", "/rebalancing/apply"])
def test_unusable_series_422_is_relayed_once(stack: Stack, route: str) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    # w9 is in the plan (allocation after) but has no allocation before: no capital base
    body = scaling_request(
        schema_version=2,
        world_alloc_after={"w1": 0.2, "w2": 0.2, "w9": 0.1},
        alpha_series={"per_world": {"w9": {"pnl": [10.0, -5.0]}}},
    )
    answer = httpx.post(f"{gw.url}{route}", json=body)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "alpha_series", "per_world", "w9", "pnl"]
    assert "world_alloc_before[w9]" in error["msg"]
    assert len(ws.requests.to(route)) == 1  # relayed, not downgraded to v1


def test_coverage_passes_through_the_gateway(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    # s1 in w1: 3 returns, one null -> n = 2; no losing period -> profit_factor, car_mdd and
    # rar_mdd undefined. w2 has no series: n = 0, every key undefined.
    body = scaling_request(
        schema_version=2,
        alpha_series={"per_strategy": {"s1": {"w1": {"returns": [0.01, None, 0.02]}}}},
    )
    answer = httpx.post(f"{gw.url}/rebalancing/plan", json=body)
    assert answer.status_code == 200, answer.text
    coverage = answer.json()["alpha_metrics"]["coverage"]
    assert coverage["per_strategy"]["s1"]["w1"] == {
        "observations": 2,
        "undefined": [
            "alpha_performance.profit_factor",
            "alpha_performance.car_mdd",
            "alpha_performance.rar_mdd",
        ],
    }
    assert coverage["per_world"]["w2"]["observations"] == 0
    assert len(coverage["per_world"]["w2"]["undefined"]) == 6
