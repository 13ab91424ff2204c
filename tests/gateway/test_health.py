"""``GET /health`` (SPEC 2.7) over real HTTP."""

from __future__ import annotations

import httpx

from qmtl.contracts import GatewayHealth

from ._support import scaling_request
from .conftest import Stack


def test_health_document_shape_and_components(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True,
                       compute_context_contract="ctx-2024.1")
    body = httpx.get(f"{gw.url}/health").json()
    GatewayHealth.model_validate(body)
    assert body["status"] == "ok"
    assert body["capabilities"] == {"rebalance_schema_version": 2, "alpha_metrics_capable": True,
                                    "compute_context_contract": "ctx-2024.1"}
    assert body["rebalance_schema_version"] == 2 and body["alpha_metrics_capable"] is True
    assert body["effective_rebalance_schema_version"] == 2
    assert body["worldservice"] == {"status": "ok", "breaker": "closed",
                                    "schema_versions": [1, 2]}
    assert body["controlbus"]["status"] == "ok"
    assert body["commit_log"]["status"] == "ok"


def test_health_is_rebuilt_for_every_request(stack: Stack) -> None:
    """Other routes never change what /health reports, and one answer never leaks into the
    next: the document is built from immutable snapshots each time."""
    ws = stack.worldservice()
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    first = httpx.get(f"{gw.url}/health").json()
    # A client asking for v1 must not downgrade the advertised capability bits.
    httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(schema_version=1))
    httpx.post(f"{gw.url}/rebalancing/execute", json=scaling_request(schema_version=1))
    second = httpx.get(f"{gw.url}/health").json()
    assert second == first
    assert second["capabilities"]["rebalance_schema_version"] == 2
    assert second["effective_rebalance_schema_version"] == 1  # this WorldService is v1-only


def test_health_follows_the_worldservice_when_it_changes(stack: Stack) -> None:
    ws = stack.worldservice(compat=False)
    port = ws.served.port
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    assert httpx.get(f"{gw.url}/health").json()["effective_rebalance_schema_version"] == 1
    stack.stop(ws)
    down = httpx.get(f"{gw.url}/health").json()
    assert down["worldservice"]["status"] == "down" and down["status"] == "degraded"
    # Capabilities learned earlier are kept while the WorldService is briefly away.
    assert down["worldservice_schema_versions"] == [1]
    stack.worldservice(compat=True, port=port)  # upgraded to v2
    up = httpx.get(f"{gw.url}/health").json()
    assert up["status"] == "ok"
    assert up["worldservice_schema_versions"] == [1, 2]
    assert up["effective_rebalance_schema_version"] == 2
