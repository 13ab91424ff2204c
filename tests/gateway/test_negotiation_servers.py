"""Version negotiation against real WorldServices over real HTTP (SPEC 2.5, 2.7, 4).

Each WorldService runs under uvicorn and counts the requests it receives, so "no double
send" is checked where it matters: at the server.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ._support import Recording, RequestLog, legacy_worldservice_app, scaling_request
from .conftest import RunningGateway, RunningWorldService, Stack

ALPHA_KEYS = {"alpha_metrics", "rebalance_intent"}

# (worldservice kind, gateway version, expected status, served version, alpha capable,
#  fallbacks, plan requests at the WorldService for one execute)
CASES = [
    ("v1-only", 1, 200, 1, False, 0, 1),
    ("v1-only", 2, 200, 1, False, 0, 1),
    ("v2", 1, 200, 1, False, 0, 1),
    ("v2", 2, 200, 2, True, 0, 1),
    ("v2-required", 1, 400, None, None, 0, 1),
    ("v2-required", 2, 200, 2, True, 0, 1),
    ("legacy", 1, 200, 1, False, 0, 1),
    ("legacy", 2, 200, 1, False, 1, 2),
]


def test_a_legacy_worldservice_is_asked_with_v2_only_once(stack: Stack) -> None:
    ws = stack.legacy_worldservice()
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    for _ in range(3):
        response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request())
        assert response.json()["schema_version"] == 1
    versions = [r.body.get("schema_version") for r in ws.requests.to("/rebalancing/plan")]
    assert versions == [2, None, None, None]
    assert gw.metric("gateway_rebalance_schema_fallback_total", route="plan") == 1


def start_worldservice(stack: Stack, kind: str) -> RunningWorldService:
    if kind == "legacy":
        return stack.legacy_worldservice()
    return stack.worldservice(compat=kind != "v1-only", required=kind == "v2-required")


def start_gateway(stack: Stack, ws: RunningWorldService, version: int) -> RunningGateway:
    return stack.gateway(ws.url, rebalance_schema_version=version,
                         alpha_metrics_capable=version >= 2)


@pytest.mark.parametrize(
    ("kind", "gw_version", "status", "served", "alpha", "fallbacks", "sends"), CASES)
def test_execute_reports_the_served_version(
    stack: Stack, kind: str, gw_version: int, status: int, served: int | None,
    alpha: bool | None, fallbacks: int, sends: int,
) -> None:
    ws = start_worldservice(stack, kind)
    gw = start_gateway(stack, ws, gw_version)
    response = httpx.post(f"{gw.url}/rebalancing/execute", json=scaling_request(), timeout=30)
    assert response.status_code == status, response.text
    if status == 200:
        body = response.json()
        assert body["rebalance_schema_version"] == served
        assert body["alpha_metrics_capable"] is alpha
        assert body["submitted"] is False
        # Hand check: w1 sells 0.5 BTC (0.3 -> 0.2 is a 2/3 scale of 1.5 BTC).
        assert [(o["symbol"], o["quantity"]) for o in body["orders_per_world"]["w1"]] == [
            ("BTCUSDT", -0.5)]
    else:
        detail = response.json()["detail"]
        assert detail["code"] == "E_SCHEMA_VERSION_REQUIRED"
        assert "schema_version>=2" in detail["message"]
    assert gw.metric("gateway_rebalance_schema_fallback_total", route="plan") == fallbacks
    assert len(ws.requests.to("/rebalancing/plan")) == sends


@pytest.mark.parametrize(("kind", "gw_version"), [(k, v) for k, v, *_ in CASES])
def test_health_says_what_is_effective(stack: Stack, kind: str, gw_version: int) -> None:
    ws = start_worldservice(stack, kind)
    gw = start_gateway(stack, ws, gw_version)
    health = httpx.get(f"{gw.url}/health").json()
    assert health["capabilities"]["rebalance_schema_version"] == gw_version
    assert health["rebalance_schema_version"] == gw_version
    assert health["alpha_metrics_capable"] is (gw_version >= 2)
    assert health["capabilities"]["alpha_metrics_capable"] is (gw_version >= 2)
    assert "compute_context_contract" not in health["capabilities"]
    expected_versions = {"v1-only": [1], "v2": [1, 2], "v2-required": [1, 2], "legacy": None}
    assert health["worldservice_schema_versions"] == expected_versions[kind]
    served = expected_versions[kind]
    # A legacy WorldService always answers v1 (the gateway falls back): effective 1 until
    # one of its answers shows more.
    effective = 1 if served is None else min(gw_version, max(served))
    assert health["effective_rebalance_schema_version"] == effective
    assert health["worldservice_alpha_metrics_required"] is (
        None if kind == "legacy" else kind == "v2-required")
    if kind == "v2-required" and gw_version == 1:
        assert health["worldservice"]["status"] == "degraded"
        assert health["status"] == "degraded"
        assert "schema_version>=2" in health["worldservice"]["detail"]
    else:
        assert health["worldservice"]["status"] == "ok"
        assert health["status"] == "ok"
    assert health["worldservice"].get("legacy", False) is (kind == "legacy")


@pytest.mark.parametrize("requested", [None, 1, 2])
def test_plan_proxy_renders_the_served_version(stack: Stack, requested: int | None) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    body: dict[str, Any] = scaling_request(rebalance_intent={"meta": {"ticket": "T-7"}})
    if requested is not None:
        body["schema_version"] = requested
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=body, timeout=30)
    assert response.status_code == 200, response.text
    plan = response.json()
    served = requested or 2
    assert plan["schema_version"] == served
    if served == 2:
        assert plan["rebalance_intent"] == {"meta": {"ticket": "T-7"}}
        assert set(plan["alpha_metrics"]["per_world"]) == {"w1", "w2"}
        # No alpha_series in the request: every value is 0.0 (SPEC 2.4).
        assert set(plan["alpha_metrics"]["per_world"]["w1"].values()) == {0.0}
    else:
        assert not ALPHA_KEYS & set(plan)
    sent = ws.requests.to("/rebalancing/plan")
    assert len(sent) == 1
    assert sent[0].body.get("schema_version") == (2 if served == 2 else None)


def test_client_may_ask_for_less_never_more(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=1)
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(schema_version=2))
    assert response.json()["schema_version"] == 1
    assert "schema_version" not in ws.requests.to("/rebalancing/plan")[0].body


def test_stale_capabilities_still_fall_back_once_and_are_relearned(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True,
                       capability_refresh_seconds=3600)
    assert httpx.get(f"{gw.url}/health").json()["worldservice_schema_versions"] == [1, 2]
    # The WorldService is replaced by a legacy one on the same address.
    port = ws.served.port
    stack.stop(ws)
    log = RequestLog()
    stack.loop.serve(Recording(legacy_worldservice_app(), log), port=port)
    response = httpx.post(f"{gw.url}/rebalancing/execute", json=scaling_request(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["rebalance_schema_version"] == 1
    assert response.json()["alpha_metrics_capable"] is False
    assert gw.metric("gateway_rebalance_schema_fallback_total", route="plan") == 1
    # The fallback refreshed the capabilities (none listed) and learned that only v1 is
    # accepted: the next call sends v1 at once.
    httpx.post(f"{gw.url}/rebalancing/execute", json=scaling_request(), timeout=30)
    versions = [r.body.get("schema_version") for r in log.to("/rebalancing/plan")]
    assert versions == [2, None, None]
    assert gw.metric("gateway_rebalance_schema_fallback_total", route="plan") == 1
