"""Bearer auth on every route but /health and /metrics; health, metrics and OpenAPI."""

from __future__ import annotations

import pytest

from qmtl.contracts import WorldServiceHealth

from .conftest import body, make_settings, running

TOKEN = "s3cret-token"

PROTECTED = [
    ("POST", "/rebalancing/plan"),
    ("POST", "/rebalancing/apply"),
    ("GET", "/allocations"),
    ("POST", "/allocations"),
    ("GET", "/rebalancing/runs/x"),
    ("GET", "/worlds/w1/audit"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer "])
async def test_protected_routes_need_a_valid_token(sqlite_dsn: str, method: str, path: str,
                                                   authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with running(make_settings(sqlite_dsn, auth={"tokens": [TOKEN]})) as ws:
        # Even an invalid body is refused as unauthenticated first.
        response = await ws.client.request(method, path, headers=headers, content=b"{bad")
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "E_UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_valid_token_is_accepted(sqlite_dsn: str) -> None:
    settings = make_settings(sqlite_dsn, auth={"tokens": ["other", TOKEN]})
    async with running(settings, headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        plan = await ws.client.post("/rebalancing/plan", json=body())
        apply = await ws.client.post("/rebalancing/apply", json=body(run_id="auth"))
        run = await ws.client.get("/rebalancing/runs/auth")
        allocations = await ws.client.get("/allocations")
        audit = await ws.client.get("/worlds/w1/audit")
        docs = await ws.client.get("/docs")
        openapi = await ws.client.get("/openapi.json")
    for response in (plan, apply, run, allocations, audit, docs, openapi):
        assert response.status_code == 200, (response.request.url, response.text)
    assert "swagger" in docs.text.lower()


async def test_health_and_metrics_are_open(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, auth={"tokens": [TOKEN]})) as ws:
        health = await ws.client.get("/health")
        metrics = await ws.client.get("/metrics")
    assert health.status_code == 200
    assert metrics.status_code == 200


async def test_protect_metrics_puts_metrics_but_not_health_behind_a_token(
        sqlite_dsn: str) -> None:
    settings = make_settings(sqlite_dsn, auth={"tokens": [TOKEN], "protect_metrics": True})
    async with running(settings) as ws:
        health = await ws.client.get("/health")
        anonymous = await ws.client.get("/metrics")
        scraper = await ws.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert health.status_code == 200
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"]["code"] == "E_UNAUTHORIZED"
    assert scraper.status_code == 200 and "qmtl_worldservice" in scraper.text


async def test_unknown_route_and_wrong_method_have_the_coded_shape(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        missing = await ws.client.get("/rebalancing/nope")
        wrong = await ws.client.delete("/rebalancing/plan")
    assert missing.status_code == 404
    assert missing.json()["detail"]["code"] == "E_NOT_FOUND"
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json()["detail"]["code"] == "E_METHOD_NOT_ALLOWED"


async def test_without_tokens_auth_is_off(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        assert (await ws.client.get("/allocations")).status_code == 200
        assert (await ws.client.get("/openapi.json")).status_code == 200


async def test_health_document(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        response = await ws.client.get("/health")
    health = WorldServiceHealth.model_validate(response.json())
    assert health.status == "ok"
    assert health.store.status == "ok" and health.controlbus.status == "ok"
    assert health.outbox.pending == 0 and health.outbox.oldest_pending_age_seconds == 0.0
    assert health.schema_versions == [1, 2]


async def test_metrics_count_plans_and_applies(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        await ws.client.post("/rebalancing/plan", json=body(schema_version=2))
        await ws.client.post("/rebalancing/apply", json=body(run_id="m"))
        await ws.client.post("/rebalancing/apply", json=body(run_id="m"))
        await ws.wait_published()
        text = (await ws.client.get("/metrics")).text
    assert 'qmtl_worldservice_plans_total{mode="scaling",served_version="2"} 1.0' in text
    assert 'qmtl_worldservice_applies_total{outcome="applied",served_version="1"} 1.0' in text
    assert 'qmtl_worldservice_applies_total{outcome="replayed",served_version="1"} 1.0' in text
    assert "qmtl_worldservice_outbox_published_total 2.0" in text
    assert "qmtl_worldservice_outbox_pending 0.0" in text
    assert "qmtl_worldservice_outbox_oldest_pending_age_seconds 0.0" in text


async def test_openapi_documents_every_error_code(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        spec = (await ws.client.get("/openapi.json")).json()
    paths = spec["paths"]

    def codes(path: str, method: str) -> str:
        responses = paths[path][method]["responses"]
        return " ".join(r.get("description", "") for r in responses.values())

    plan_codes = codes("/rebalancing/plan", "post")
    for code in ("E_SCHEMA_VERSION_REQUIRED", "E_UNAUTHORIZED", "E_PAYLOAD_TOO_LARGE",
                 "E_OVERLAY_CONFIG_REQUIRED", "E_OVERLAY_CONFIG_INVALID",
                 "E_REBALANCE_MODE_UNSUPPORTED", "E_STORE_UNAVAILABLE"):
        assert code in plan_codes
    apply_codes = codes("/rebalancing/apply", "post")
    assert "E_RUN_ID_CONFLICT" in apply_codes and "E_ETAG_MISMATCH" in apply_codes
    assert "E_ETAG_MISMATCH" in codes("/allocations", "post")
    assert "E_NOT_FOUND" in codes("/allocations", "get")
    assert "E_NOT_FOUND" in codes("/rebalancing/runs/{run_id}", "get")
    request_ref = paths["/rebalancing/plan"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"]
    name = request_ref.rsplit("/", 1)[1]
    schemas = spec["components"]["schemas"]
    assert "positions" in schemas[name]["properties"]
    assert "PositionSlice" in schemas
    assert "/health" in paths and "/docs" not in paths
