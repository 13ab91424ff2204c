"""``POST /rebalancing/explain`` on a real WorldService and through a real gateway."""

from __future__ import annotations

import httpx
import pytest

from qmtl.contracts import RebalanceExplanation

from ._support import scaling_request
from .conftest import Stack


def test_explain_through_the_gateway_equals_the_worldservice(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    body = scaling_request(schema_version=2)
    direct = httpx.post(f"{ws.url}/rebalancing/explain", json=body)
    proxied = httpx.post(f"{gw.url}/rebalancing/explain", json=body)
    assert direct.status_code == proxied.status_code == 200, proxied.text
    assert proxied.json() == direct.json()
    doc = RebalanceExplanation.model_validate(proxied.json())
    # Hand calculation in scaling_request: w1 moves (2/3 - 1) x 1.5 = -0.5 BTC @ 60000.
    (btc,) = doc.per_world["w1"].keys
    assert (btc.symbol, btc.venue, btc.final_delta, btc.strategies) == (
        "BTCUSDT",
        "binance",
        -0.5,
        2,
    )
    assert btc.notional == pytest.approx(-30_000.0)
    assert doc.per_world["w1"].turnover == pytest.approx(0.03)
    assert doc.per_world["w2"].keys == []
    assert "schema_version" not in proxied.json()
    plan = httpx.post(f"{gw.url}/rebalancing/plan", json=body).json()
    assert [d["delta_qty"] for d in plan["per_world"]["w1"]["deltas"]] == [btc.final_delta]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (scaling_request(mode="hybrid"), 501, "E_REBALANCE_MODE_UNSUPPORTED"),
        (scaling_request(mode="overlay"), 422, "E_OVERLAY_CONFIG_REQUIRED"),
    ],
)
def test_worldservice_errors_are_relayed(
    stack: Stack, body: dict[str, object], status: int, code: str
) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url)
    direct = httpx.post(f"{ws.url}/rebalancing/explain", json=body)
    proxied = httpx.post(f"{gw.url}/rebalancing/explain", json=body)
    assert proxied.status_code == direct.status_code == status
    assert proxied.json() == direct.json()
    assert proxied.json()["detail"]["code"] == code


def test_validation_422_is_relayed_in_list_form(stack: Stack) -> None:
    ws = stack.worldservice()
    gw = stack.gateway(ws.url)
    body = scaling_request()
    body["positions"][0]["mark"] = 0
    proxied = httpx.post(f"{gw.url}/rebalancing/explain", json=body)
    assert proxied.status_code == 422
    assert ["body", "positions", 0, "mark"] in [e["loc"] for e in proxied.json()["detail"]]


def test_explain_needs_the_token_on_both_services(stack: Stack) -> None:
    ws = stack.worldservice(auth={"tokens": ["ws-secret"]})
    gw = stack.gateway(ws.url, auth={"tokens": ["gw-secret"]}, worldservice_token="ws-secret")
    assert httpx.post(f"{ws.url}/rebalancing/explain", json=scaling_request()).status_code == 401
    refused = httpx.post(f"{gw.url}/rebalancing/explain", json=scaling_request())
    assert refused.status_code == 401
    assert refused.json()["detail"]["code"] == "E_UNAUTHORIZED"
    ok = httpx.post(
        f"{gw.url}/rebalancing/explain",
        json=scaling_request(),
        headers={"Authorization": "Bearer gw-secret"},
    )
    assert ok.status_code == 200, ok.text


def test_unreachable_worldservice_is_503(stack: Stack) -> None:
    gw = stack.gateway("http://127.0.0.1:9")
    response = httpx.post(f"{gw.url}/rebalancing/explain", json=scaling_request())
    assert response.status_code == 503
    assert response.json()["detail"]["code"] == "E_WORLDSERVICE_UNAVAILABLE"


def test_allocations_are_proxied_read_only_with_their_etag(stack: Stack) -> None:
    ws = stack.worldservice()
    gw = stack.gateway(ws.url)
    httpx.post(f"{ws.url}/allocations", json={"world_alloc": {"w1": 0.3}})
    direct = httpx.get(f"{ws.url}/allocations")
    proxied = httpx.get(f"{gw.url}/allocations")
    assert proxied.status_code == 200
    assert proxied.json() == direct.json()
    assert proxied.headers["etag"] == direct.headers["etag"] == f'"{direct.json()["etag"]}"'
    stale = httpx.post(
        f"{gw.url}/rebalancing/apply",
        json=scaling_request(run_id="r-412"),
        headers={"If-Match": '"old"'},
    )
    assert stale.status_code == 412
    fresh = httpx.post(
        f"{gw.url}/rebalancing/apply",
        json=scaling_request(run_id="r-ok"),
        headers={"If-Match": proxied.headers["etag"]},
    )
    assert fresh.status_code == 200, fresh.text


def test_a_null_before_is_read_from_the_stored_allocations_like_a_plan(stack: Stack) -> None:
    ws = stack.worldservice()
    gw = stack.gateway(ws.url)
    httpx.post(f"{ws.url}/allocations", json={"world_alloc": {"w1": 0.3, "w2": 0.2}})
    body = scaling_request(world_alloc_before=None)
    doc = httpx.post(f"{gw.url}/rebalancing/explain", json=body).json()
    plan = httpx.post(f"{gw.url}/rebalancing/plan", json=body).json()
    assert doc["per_world"]["w1"]["alloc_before"] == 0.3
    assert doc["per_world"]["w1"]["scale_world"] == plan["per_world"]["w1"]["scale_world"]
    assert [k["final_delta"] for k in doc["per_world"]["w1"]["keys"]] == [
        d["delta_qty"] for d in plan["per_world"]["w1"]["deltas"]
    ]
