"""A WorldService without ``/health`` (the original platform's: 404) is *legacy*, not
degraded (SPEC 2.7): the gateway reports it ``ok`` with ``legacy: true`` while its routes
answer, and learns the effective version from its answers. Real servers over HTTP."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from ._legacy import original_v1_app
from ._support import Recording, RequestLog, scaling_request
from .conftest import Stack


def test_a_worldservice_without_health_is_legacy_and_ok(stack: Stack) -> None:
    log = RequestLog()
    ws = stack.loop.serve(Recording(original_v1_app(), log))
    assert httpx.get(f"{ws.url}/health").status_code == 404
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    health = httpx.get(f"{gw.url}/health").json()
    assert health["status"] == "ok"
    component = health["worldservice"]
    assert component["status"] == "ok" and component["legacy"] is True
    assert component["breaker"] == "closed"
    assert "404" in component["detail"] and "unknown" in component["detail"]
    assert "schema_versions" not in component
    assert health["worldservice_schema_versions"] is None
    assert health["worldservice_alpha_metrics_required"] is None
    assert health["effective_rebalance_schema_version"] == 1
    # Its routes answer: plan works (v2 refused, one fallback), and /health stays ok.
    plan = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(), timeout=30)
    assert plan.status_code == 200, plan.text
    assert plan.json()["schema_version"] == 1
    after = httpx.get(f"{gw.url}/health").json()
    assert after["status"] == "ok" and after["worldservice"]["legacy"] is True
    assert after["effective_rebalance_schema_version"] == 1


def test_a_server_without_health_nor_routes_is_degraded_once_a_route_answers_404(
        stack: Stack) -> None:
    nothing = stack.loop.serve(Starlette())  # e.g. worldservice_url points at another app
    gw = stack.gateway(nothing.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    assert httpx.get(f"{gw.url}/health").json()["status"] == "ok"  # nothing known yet
    plan = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(), timeout=30)
    assert plan.status_code == 404
    health = httpx.get(f"{gw.url}/health").json()
    assert health["status"] == "degraded"
    assert health["worldservice"]["status"] == "degraded"
    assert "worldservice_url" in health["worldservice"]["detail"]
