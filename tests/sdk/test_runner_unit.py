"""Runner feature switching, request building and result parsing.

Unit tests: the gateway's HTTP surface is an ``httpx.MockTransport`` (``MockGateway``) whose
capability bits the tests change; ``test_runner_integration.py`` flips a real gateway.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from qmtl.contracts import ALPHA_METRIC_KEYS, MultiWorldRebalanceRequest
from qmtl.sdk import GatewayClient, GatewayError, RebalanceResult, Runner

from ._mock_gateway import FakeClock, MockGateway, v2_health

BASE: dict[str, Any] = {
    "total_equity": 1000.0, "world_alloc_before": {"w1": 0.5}, "world_alloc_after": {"w1": 0.4},
    "positions": [{"world_id": "w1", "strategy_id": "s1", "symbol": "BTC", "qty": 1.0,
                   "mark": 100.0}],
    "schema_version": 2,
    "alpha_series": {"per_world": {"w1": {"returns": [0.01, -0.01]}},
                     "per_strategy": {"s2": {"w1": {"returns": [0.5]}}}},
}


def _runner(gw: MockGateway, clock: FakeClock | None = None, **kwargs: Any) -> Runner:
    client = GatewayClient("http://gw", transport=gw.transport(), capabilities_ttl=30,
                           clock=clock or FakeClock())
    return Runner(client, **kwargs)


async def test_feature_is_off_until_capabilities_are_read() -> None:
    runner = _runner(MockGateway())
    assert not runner.features.alpha_metrics
    assert (await runner.refresh()).alpha_metrics


@pytest.mark.parametrize(
    ("health", "on", "reason"),
    [
        (v2_health(), True, "effective schema version 2"),
        (v2_health(alpha=False), False, "not alpha_metrics_capable"),
        (v2_health(effective=1), False, "effective schema version 1 < 2"),
        (v2_health(effective=None), False, "unknown"),
        (v2_health(version=1, alpha=True, effective=1), False, "effective schema version 1"),
        ({"status": "ok"}, False, "not alpha_metrics_capable"),
        ({"status": "ok", "capabilities": {"rebalance_schema_version": "2",
                                           "alpha_metrics_capable": "true"}}, True, "2"),
    ],
)
async def test_feature_rule(health: dict[str, Any], on: bool, reason: str) -> None:
    features = await _runner(MockGateway(health=health)).refresh()
    assert features.alpha_metrics is on
    assert reason in features.reason


async def test_feature_flips_when_the_gateway_bits_change_after_the_ttl() -> None:
    gw = MockGateway()
    clock = FakeClock()
    runner = _runner(gw, clock)
    assert (await runner.refresh()).alpha_metrics
    gw.health = v2_health(version=1, alpha=False, effective=1)
    assert (await runner.refresh()).alpha_metrics  # still cached
    clock.now += 31
    assert not (await runner.refresh()).alpha_metrics
    gw.health = v2_health()
    clock.now += 31
    assert (await runner.refresh()).alpha_metrics


async def test_build_request_with_the_feature_on_adds_series_and_v2() -> None:
    runner = _runner(MockGateway())
    await runner.refresh()
    runner.record_return("w1", "s1", 0.01)
    runner.record_return("w1", "s1", -0.02)
    runner.record_return("w1", "s2", 0.03)
    request = runner.build_request(BASE)
    assert request.schema_version == 2
    assert request.alpha_series is not None
    series = request.alpha_series.per_strategy
    assert series["s1"]["w1"].returns == [0.01, -0.02]
    # The caller's own series win over recorded ones.
    assert series["s2"]["w1"].returns == [0.5]
    assert request.alpha_series.per_world["w1"].returns == [0.01, -0.01]


async def test_build_request_with_the_feature_off_strips_series_and_version() -> None:
    runner = _runner(MockGateway(health=v2_health(alpha=False)))
    await runner.refresh()
    runner.record_return("w1", "s1", 0.01)
    request = runner.build_request(MultiWorldRebalanceRequest.model_validate(BASE))
    assert request.alpha_series is None
    assert request.schema_version is None


async def test_plan_sends_the_built_request() -> None:
    gw = MockGateway(answers={"/rebalancing/plan": (200, {"schema_version": 2})})
    runner = _runner(gw)
    runner.record_return("w1", "s1", 0.01)
    await runner.plan(BASE)
    body = json.loads(gw.requests[-1].content)
    assert body["schema_version"] == 2
    assert body["alpha_series"]["per_strategy"]["s1"]["w1"]["returns"] == [0.01]


async def test_record_return_exports_gauges_on_the_injected_registry() -> None:
    registry = CollectorRegistry()
    runner = _runner(MockGateway(), registry=registry)
    for r in (0.01, -0.02, 0.03):
        metrics = runner.record_return("w1", "s1", r)
    labels = {"world_id": "w1", "strategy_id": "s1"}
    for key in ALPHA_METRIC_KEYS:
        assert registry.get_sample_value(key.replace(".", "_"), labels) == metrics[key]
    node = runner.performance("w1", "s1")
    assert node is not None and node.returns == (0.01, -0.02, 0.03)


def test_record_return_rejects_empty_ids() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        _runner(MockGateway()).record_return("", "s1", 0.01)


def test_runner_window_keeps_the_last_returns() -> None:
    runner = _runner(MockGateway(), window=2)
    for r in (0.01, 0.02, 0.03):
        runner.record_return("w1", "s1", r)
    node = runner.performance("w1", "s1")
    assert node is not None and node.returns == (0.02, 0.03)


ENVELOPE = {
    "per_world": {"w1": {"alpha_performance.sharpe": 1.5, "alpha_performance.future": 9.0,
                         "alpha_performance.win_ratio": "0.5", "alpha_performance.car_mdd": True}},
    "per_strategy": {"s1": {"w1": {"alpha_performance.sharpe": 0.5}}},
}


def test_v2_result_exposes_parsed_metrics_ignoring_unknown_keys() -> None:
    result = RebalanceResult.from_document({"schema_version": 2, "alpha_metrics": ENVELOPE})
    assert result.schema_version == 2
    assert result.alpha_metrics is not None
    assert result.alpha_metrics.per_world == {"w1": {"alpha_performance.sharpe": 1.5}}
    assert result.alpha_metrics.per_strategy == {"s1": {"w1": {"alpha_performance.sharpe": 0.5}}}


def test_v1_result_has_no_metrics_even_with_stray_keys() -> None:
    result = RebalanceResult.from_document({"schema_version": 1, "alpha_metrics": ENVELOPE})
    assert result.alpha_metrics is None
    assert RebalanceResult.from_document({"per_world": {}}).schema_version == 1


def test_v2_result_without_envelope_has_no_metrics() -> None:
    assert RebalanceResult.from_document({"schema_version": 2}).alpha_metrics is None


def test_execute_documents_use_rebalance_schema_version() -> None:
    result = RebalanceResult.from_document({"rebalance_schema_version": 2, "orders_per_world": {}})
    assert result.schema_version == 2


@pytest.mark.parametrize("bad", ["2", 2.0, True, 0])
def test_a_malformed_version_is_an_error(bad: Any) -> None:
    with pytest.raises(GatewayError, match="schema_version"):
        RebalanceResult.from_document({"schema_version": bad})
