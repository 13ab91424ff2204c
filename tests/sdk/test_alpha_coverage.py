"""Which alpha values are undefined, as the SDK exposes them (SPEC 2.4): ``RebalanceResult``
reads the envelope's ``coverage``; ``AlphaPerformance.undefined`` names the streaming node's;
an unusable series is a ``GatewayHTTPError`` 422 naming ``alpha_series.<path>``."""

from __future__ import annotations

from typing import Any

import pytest

from qmtl.contracts import ALPHA_METRIC_KEYS, CloudEvent
from qmtl.sdk import AlphaPerformance, GatewayClient, GatewayHTTPError, RebalanceResult, Runner
from qmtl.sdk._event_model import parse_relay_message
from tests.cli._up import QmtlUp

from .conftest import book

SHARPE = "alpha_performance.sharpe"
PF = "alpha_performance.profit_factor"
CAR = "alpha_performance.car_mdd"
RAR = "alpha_performance.rar_mdd"


def _document(coverage: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "per_world": {"w1": dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)},
        "per_strategy": {},
    }
    if coverage is not None:
        envelope["coverage"] = coverage
    return {"schema_version": 2, "per_world": {}, "global_deltas": [], "alpha_metrics": envelope}


def test_result_reads_coverage() -> None:
    result = RebalanceResult.from_document(
        _document(
            {
                "per_world": {"w1": {"observations": 3, "undefined": [PF]}},
                "per_strategy": {
                    "s1": {"w1": {"observations": 0, "undefined": list(ALPHA_METRIC_KEYS)}}
                },
            }
        )
    )
    assert result.undefined("w1") == frozenset({PF})
    assert result.observations("w1") == 3
    assert result.undefined("w1", "s1") == frozenset(ALPHA_METRIC_KEYS)
    assert result.observations("w1", "s1") == 0
    assert result.undefined("w2") is None and result.observations("w1", "s9") is None


def test_result_without_coverage_says_unknown() -> None:
    # An older WorldService sends no coverage: unknown, not "everything defined".
    result = RebalanceResult.from_document(_document(None))
    assert result.alpha_metrics is not None and result.coverage is None
    assert result.undefined("w1") is None and result.observations("w1") is None
    v1 = RebalanceResult.from_document({"schema_version": 1, "per_world": {}})
    assert v1.coverage is None and v1.undefined("w1") is None


def test_streaming_node_names_undefined_metrics() -> None:
    node = AlphaPerformance()
    assert node.undefined == ALPHA_METRIC_KEYS  # nothing observed yet
    node.update(0.01)
    # n = 1: no Sharpe (n < 2), no loss (profit factor), no drawdown (car/rar_mdd)
    assert node.undefined == (SHARPE, PF, CAR, RAR)
    node.update(-0.005)
    assert node.undefined == ()
    node.update(None)  # a missing period changes nothing
    assert node.undefined == ()


@pytest.mark.e2e
async def test_runner_result_reports_coverage(up_v2: QmtlUp) -> None:
    async with GatewayClient(up_v2.gateway_url) as client:
        runner = Runner(client)
        for r in (0.01, None, 0.02):
            runner.record_return("wa", "sa", r)
        result = await runner.plan(book())
    # the node keeps the 2 observed returns; both gains -> no losing period, no drawdown
    assert result.observations("wa", "sa") == 2
    assert result.undefined("wa", "sa") == frozenset({PF, CAR, RAR})
    assert result.observations("wb") == 0
    assert result.undefined("wb") == frozenset(ALPHA_METRIC_KEYS)


@pytest.mark.e2e
async def test_unusable_series_is_a_422_naming_it(up_v2: QmtlUp) -> None:
    body = book(schema_version=2, alpha_series={"per_world": {"wa": {"equity": [100.0, 0.0, 5.0]}}})
    async with GatewayClient(up_v2.gateway_url) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.plan(body)
    assert (info.value.status_code, info.value.code) == (422, "E_VALIDATION")
    [error] = info.value.detail
    assert error["loc"] == ["body", "alpha_series", "per_world", "wa", "equity", 1]


def test_event_slice_keeps_its_coverage() -> None:
    data = {
        "world_id": "w1",
        "plan": {"world_id": "w1", "scale_world": 1.0, "scale_by_strategy": {}, "deltas": []},
        "version": 2,
        "schema_version": 2,
        "compat_rebalance_v2": True,
        "run_id": "r-1",
        "seq": 1,
        "idempotency_key": "k-1",
        "rebalance_intent": {"meta": {}},
        "alpha_metrics": {
            "per_world": {"w1": dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)},
            "per_strategy": {},
            "coverage": {
                "per_world": {"w1": {"observations": 0, "undefined": list(ALPHA_METRIC_KEYS)}},
                "per_strategy": {},
            },
        },
    }
    cloud = CloudEvent(id="e-1", source="test", type="rebalancing_planned", data=data)
    event = parse_relay_message({**cloud.model_dump(mode="json"), "seq": 1})
    assert event.alpha_metrics is not None and event.alpha_metrics.coverage is not None
    assert event.alpha_metrics.coverage.per_world["w1"].observations == 0
