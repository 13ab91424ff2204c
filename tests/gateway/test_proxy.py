"""Plan/apply proxy over real HTTP: upstream errors relayed unchanged, 503/504 at the
boundary, the circuit breaker against a WorldService that really stops and comes back,
gateway auth and body limits."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from fastapi import FastAPI

from qmtl.web.server import free_port

from ._support import scaling_request
from .conftest import Stack


def test_apply_replay_and_if_match_headers_pass_through(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    first = httpx.post(f"{gw.url}/rebalancing/apply", json=scaling_request(run_id="a-1"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["run_id"] == "a-1" and body["etag"] and body["schema_version"] == 2
    again = httpx.post(f"{gw.url}/rebalancing/apply", json=scaling_request(run_id="a-1"))
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == body
    conflict = httpx.post(f"{gw.url}/rebalancing/apply",
                          json=scaling_request(run_id="a-1", min_trade_notional=5.0))
    assert conflict.status_code == 409
    assert conflict.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
    stale = httpx.post(f"{gw.url}/rebalancing/apply", json=scaling_request(run_id="a-2"),
                       headers={"If-Match": '"not-the-etag"'})
    assert stale.status_code == 412
    assert stale.json()["detail"]["code"] == "E_ETAG_MISMATCH"
    sent = ws.requests.to("/rebalancing/apply")
    assert len(sent) == 4  # one request per call: nothing retried or doubled


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (scaling_request(mode="hybrid"), 501, "E_REBALANCE_MODE_UNSUPPORTED"),
        (scaling_request(mode="overlay"), 422, "E_OVERLAY_CONFIG_REQUIRED"),
    ],
)
def test_worldservice_errors_keep_status_and_detail(stack: Stack, body: dict[str, object],
                                                    status: int, code: str) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    direct = httpx.post(f"{ws.url}/rebalancing/plan", json=body)
    proxied = httpx.post(f"{gw.url}/rebalancing/plan", json=body)
    assert proxied.status_code == direct.status_code == status
    assert proxied.json() == direct.json()
    assert proxied.json()["detail"]["code"] == code
    # A coded 422 is about the plan, not the version: no fallback.
    assert gw.metric("gateway_rebalance_schema_fallback_total", route="plan") == 0


def test_worldservice_validation_422_passes_through_in_list_form(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    body = scaling_request(schema_version=2)
    body["positions"][0]["mark"] = 0
    direct = httpx.post(f"{ws.url}/rebalancing/plan", json=body)
    proxied = httpx.post(f"{gw.url}/rebalancing/plan", json=body)
    assert proxied.status_code == direct.status_code == 422
    assert proxied.json() == direct.json()
    assert ["body", "positions", 0, "mark"] in [e["loc"] for e in proxied.json()["detail"]]
    assert gw.metric("gateway_rebalance_schema_fallback_total", route="plan") == 0


def test_an_unchanged_body_is_forwarded_byte_for_byte(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    raw = json.dumps(scaling_request(schema_version=2, note="kept")).encode()
    response = httpx.post(f"{gw.url}/rebalancing/plan", content=raw,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200
    [sent] = ws.requests.to("/rebalancing/plan")
    assert sent.body == json.loads(raw)


@pytest.mark.parametrize(("raw", "loc"), [(b"not json", ["body"]),
                                          (b'{"schema_version": "2"}', ["body", "schema_version"]),
                                          (b"[1]", ["body"])])
def test_the_proxy_refuses_what_it_cannot_route(stack: Stack, raw: bytes,
                                                loc: list[object]) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url)
    response = httpx.post(f"{gw.url}/rebalancing/plan", content=raw,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert loc in [e["loc"] for e in response.json()["detail"]]
    assert ws.requests.to("/rebalancing/plan") == []


def test_worldservice_413_and_401_pass_through(stack: Stack) -> None:
    ws = stack.worldservice(compat=True, max_positions=2, auth={"tokens": ["ws-secret"]})
    anonymous = stack.gateway(ws.url)
    response = httpx.post(f"{anonymous.url}/rebalancing/plan", json=scaling_request())
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "E_UNAUTHORIZED"
    trusted = stack.gateway(ws.url, worldservice_token="ws-secret")
    response = httpx.post(f"{trusted.url}/rebalancing/plan", json=scaling_request())
    assert response.status_code == 413  # three positions, the WorldService allows two
    assert response.json()["detail"]["code"] == "E_PAYLOAD_TOO_LARGE"


def test_unreachable_worldservice_is_503(stack: Stack) -> None:
    gw = stack.gateway(f"http://127.0.0.1:{free_port()}", retries={"attempts": 1})
    for path in ("plan", "apply", "execute"):
        response = httpx.post(f"{gw.url}/rebalancing/{path}", json=scaling_request())
        assert response.status_code == 503
        assert response.json()["detail"]["code"] == "E_WORLDSERVICE_UNAVAILABLE"
    health = httpx.get(f"{gw.url}/health").json()
    assert health["status"] == "degraded" and health["worldservice"]["status"] == "down"
    assert health["effective_rebalance_schema_version"] is None


def slow_worldservice(delay: float) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "schema_versions": [1]}

    @app.post("/rebalancing/plan")
    async def plan() -> dict[str, object]:
        await asyncio.sleep(delay)
        return {"per_world": {}, "global_deltas": []}

    return app


def test_slow_worldservice_is_504(stack: Stack) -> None:
    ws = stack.loop.serve(slow_worldservice(delay=5.0))
    gw = stack.gateway(ws.url, timeouts={"read": 0.2})
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(), timeout=30)
    assert response.status_code == 504
    assert response.json()["detail"]["code"] == "E_WORLDSERVICE_TIMEOUT"


def test_breaker_opens_half_opens_and_recovers_with_a_real_worldservice(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    port = ws.served.port
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True,
                       retries={"attempts": 1},
                       breaker={"failure_threshold": 2, "reset_timeout": 0.3},
                       capability_refresh_seconds=3600)
    assert httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request()).status_code == 200
    stack.stop(ws)
    messages = []
    for _ in range(3):
        response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request())
        assert response.status_code == 503
        messages.append(response.json()["detail"]["message"])
    assert "unreachable" in messages[0] and "unreachable" in messages[1]
    assert "circuit is open" in messages[2]  # answered without calling the WorldService
    assert gw.metric("gateway_worldservice_breaker_state") == 2
    assert gw.metric("gateway_worldservice_requests_total", route="plan",
                     outcome="circuit_open") == 1
    assert httpx.get(f"{gw.url}/health").json()["worldservice"]["breaker"] == "open"

    stack.worldservice(compat=True, port=port)  # the WorldService is back
    time.sleep(0.4)  # let reset_timeout pass so the next call is the half-open trial
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request())
    assert response.status_code == 200, response.text
    assert gw.metric("gateway_worldservice_breaker_state") == 0
    assert httpx.get(f"{gw.url}/health").json()["worldservice"]["breaker"] == "closed"


def test_gateway_auth_protects_routes_but_not_health(stack: Stack) -> None:
    ws = stack.worldservice()
    gw = stack.gateway(ws.url, auth={"tokens": ["gw-secret"]})
    for path in ("/rebalancing/plan", "/rebalancing/apply", "/rebalancing/execute"):
        response = httpx.post(f"{gw.url}{path}", json=scaling_request())
        assert response.status_code == 401
        assert response.json()["detail"]["code"] == "E_UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.get(f"{gw.url}/openapi.json").status_code == 401
    ok = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(),
                    headers={"Authorization": "Bearer gw-secret"})
    assert ok.status_code == 200
    assert httpx.get(f"{gw.url}/health").status_code == 200
    assert httpx.get(f"{gw.url}/metrics").status_code == 200


def test_protect_metrics_puts_metrics_but_not_health_behind_a_token(stack: Stack) -> None:
    gw = stack.gateway(auth={"tokens": ["gw-secret"], "protect_metrics": True})
    assert httpx.get(f"{gw.url}/health").status_code == 200
    anonymous = httpx.get(f"{gw.url}/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"]["code"] == "E_UNAUTHORIZED"
    scraper = httpx.get(f"{gw.url}/metrics", headers={"Authorization": "Bearer gw-secret"})
    assert scraper.status_code == 200 and "gateway_" in scraper.text


def test_unknown_route_and_wrong_method_have_the_coded_shape(stack: Stack) -> None:
    gw = stack.gateway()
    missing = httpx.get(f"{gw.url}/rebalancing/nope")
    wrong = httpx.get(f"{gw.url}/rebalancing/execute")
    assert missing.status_code == 404
    assert missing.json()["detail"]["code"] == "E_NOT_FOUND"
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json()["detail"]["code"] == "E_METHOD_NOT_ALLOWED"


def test_oversized_body_is_413(stack: Stack) -> None:
    gw = stack.gateway(max_body_bytes=100)
    response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request())
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "E_PAYLOAD_TOO_LARGE"


def test_openapi_documents_every_error_code(stack: Stack) -> None:
    gw = stack.gateway()
    schema = httpx.get(f"{gw.url}/openapi.json").json()
    text = str(schema)
    for code in ("E_PERMISSION_DENIED", "E_SHARED_ACCOUNT_DISABLED", "E_SHARED_ACCOUNT_POLICY",
                 "E_OVERLAY_EXECUTION_AMBIGUOUS", "E_OVERLAY_EXECUTION_UNMAPPED",
                 "E_OVERLAY_CONFIG_REQUIRED", "E_REBALANCE_MODE_UNSUPPORTED",
                 "E_RUN_ID_CONFLICT", "E_COMMITLOG_UNAVAILABLE", "E_WORLDSERVICE_UNAVAILABLE",
                 "E_WORLDSERVICE_TIMEOUT", "E_WORLDSERVICE_ERROR", "E_SCHEMA_VERSION_REQUIRED",
                 "E_UNAUTHORIZED", "E_PAYLOAD_TOO_LARGE", "E_ETAG_MISMATCH"):
        assert code in text, code
    docs = httpx.get(f"{gw.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    execute = schema["paths"]["/rebalancing/execute"]["post"]
    assert execute["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/MultiWorldRebalanceRequest")
    assert "MultiWorldRebalanceRequest" in schema["components"]["schemas"]
    assert {p["name"] for p in execute["parameters"]} >= {
        "per_strategy", "shared_account", "submit", "x-allow-live"}
