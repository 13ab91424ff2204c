"""Unit tests of the WorldService client with ``httpx.MockTransport`` standing in for the
WorldService (error mapping, retries of safe calls, breaker accounting, fallback). The same
behaviours run against real HTTP servers in ``test_proxy.py`` and ``test_negotiation.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import (
    QmtlError,
    UpstreamError,
    WorldServiceError,
    WorldServiceTimeout,
    WorldServiceUnavailable,
)
from qmtl.gateway.config import GatewaySettings
from qmtl.gateway.metrics import GatewayMetrics
from qmtl.gateway.outgoing import OutgoingRequest
from qmtl.gateway.worldservice_client import WorldServiceClient

from ._support import scaling_request

PLAN_V1: dict[str, Any] = {"per_world": {}, "global_deltas": []}
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, **settings: Any) -> tuple[WorldServiceClient, CollectorRegistry]:
    registry = CollectorRegistry()
    config = GatewaySettings(worldservice_url="http://ws.test", **settings)
    return WorldServiceClient(config, metrics=GatewayMetrics(registry),
                              transport=httpx.MockTransport(handler)), registry


def request(**kw: Any) -> OutgoingRequest:
    raw = json.dumps(scaling_request(**kw)).encode()
    return OutgoingRequest.from_model(raw, MultiWorldRebalanceRequest.model_validate_json(raw))


def counter(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_connect_error_is_503_and_timeout_is_504() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    client, _ = client_for(refuse)
    with pytest.raises(WorldServiceUnavailable) as unavailable:
        await client.post_rebalance_plan(request())
    assert unavailable.value.status_code == 503

    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    client, _ = client_for(slow)
    with pytest.raises(WorldServiceTimeout) as timeout:
        await client.post_rebalance_plan(request())
    assert timeout.value.status_code == 504
    await client.aclose()


async def test_upstream_errors_keep_status_and_detail() -> None:
    detail = [{"type": "missing", "loc": ["body", "total_equity"], "msg": "Field required"}]

    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": detail})

    client, _ = client_for(answer)
    with pytest.raises(UpstreamError) as info:
        await client.post_rebalance_plan(request())
    assert info.value.status_code == 422
    assert info.value.to_body() == {"detail": detail}


async def test_only_safe_calls_are_retried_after_connection_errors() -> None:
    calls: list[str] = []

    def flaky(req: httpx.Request) -> httpx.Response:
        calls.append(f"{req.method} {req.url.path}")
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=req)
        return httpx.Response(200, json={"status": "ok", "schema_versions": [1, 2]})

    client, registry = client_for(flaky, retries={"attempts": 3, "backoff": 0.0})
    probe = await client.refresh()
    assert probe.status == "ok" and probe.schema_versions == (1, 2)
    assert calls == ["GET /health"] * 3
    assert counter(registry, "gateway_worldservice_retries_total", route="health") == 2

    calls.clear()

    def refuse(req: httpx.Request) -> httpx.Response:
        calls.append(f"{req.method} {req.url.path}")
        raise httpx.ConnectError("refused", request=req)

    client, _ = client_for(refuse, retries={"attempts": 3, "backoff": 0.0})
    with pytest.raises(WorldServiceUnavailable):
        await client.post_rebalance_plan(request())
    assert calls == ["POST /rebalancing/plan"]  # a POST is never retried


async def test_timeouts_are_not_retried() -> None:
    calls = 0

    def slow(req: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow", request=req)

    client, _ = client_for(slow, retries={"attempts": 3, "backoff": 0.0})
    probe = await client.refresh()
    assert probe.status == "down" and calls == 1


async def test_breaker_opens_fails_fast_and_recovers_through_a_trial() -> None:
    up = False
    calls = 0

    def ws(req: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if not up:
            return httpx.Response(503, json={"detail": {"code": "E_STORE_UNAVAILABLE",
                                                        "message": "down"}})
        return httpx.Response(200, json=PLAN_V1)

    client, registry = client_for(ws, breaker={"failure_threshold": 2, "reset_timeout": 0.05})
    for _ in range(2):
        with pytest.raises(UpstreamError) as info:
            await client.post_rebalance_plan(request())
        assert info.value.status_code == 503  # the WorldService's own 503 is relayed
    assert client.breaker.state.value == "open"
    assert counter(registry, "gateway_worldservice_breaker_state") == 2
    with pytest.raises(WorldServiceUnavailable) as fast:
        await client.post_rebalance_plan(request())
    assert "circuit is open" in fast.value.message
    assert calls == 2  # the open circuit did not call the WorldService
    up = True
    client.breaker._opened_at -= 1.0  # the reset timeout has passed
    result = await client.post_rebalance_plan(request())
    assert result.served_version == 1
    assert client.breaker.state.value == "closed"
    assert counter(registry, "gateway_worldservice_breaker_state") == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, {"detail": {"code": "E_X", "message": "bad"}}), (404, {"detail": "Not Found"}),
     (422, {"detail": [{"type": "missing", "loc": ["body", "x"], "msg": "Field required"}]}),
     (500, {"detail": {"code": "E_INTERNAL", "message": "internal error: OverflowError"}}),
     (501, {"detail": {"code": "E_REBALANCE_MODE_UNSUPPORTED", "message": "hybrid"}}),
     (505, {"detail": "HTTP Version Not Supported"})],
)
async def test_4xx_and_500_do_not_count_against_the_breaker(status: int,
                                                            body: dict[str, Any]) -> None:
    def ws(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    client, _ = client_for(ws, breaker={"failure_threshold": 1, "reset_timeout": 10})
    for _ in range(3):
        with pytest.raises(QmtlError):
            await client.post_rebalance_plan(request())
    assert client.breaker.state.value == "closed"


async def test_a_busy_connection_pool_is_503_and_not_counted_by_the_breaker() -> None:
    # httpx raises PoolTimeout when every pooled connection is taken (e.g. by slow
    # uploads): the gateway's own load, which says nothing about the WorldService.
    def busy(req: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no free connection", request=req)

    client, registry = client_for(busy, breaker={"failure_threshold": 1, "reset_timeout": 10})
    for _ in range(3):
        with pytest.raises(WorldServiceUnavailable) as info:
            await client.post_rebalance_plan(request())
        assert info.value.status_code == 503 and "busy" in info.value.message
    assert client.breaker.state.value == "closed"
    assert counter(registry, "gateway_worldservice_requests_total", route="plan",
                   outcome="pool_busy") == 3


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_502_503_504_count_against_the_breaker(status: int) -> None:
    def ws(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="upstream unwell")

    client, _ = client_for(ws, breaker={"failure_threshold": 2, "reset_timeout": 10})
    for _ in range(2):
        with pytest.raises(UpstreamError) as info:
            await client.post_rebalance_plan(request())
        assert info.value.status_code == status
    assert client.breaker.state.value == "open"


@pytest.mark.parametrize(
    ("content", "upstream"),
    [(b'{"detail": {"code": "E_INTERNAL", "message": "internal error: OverflowError"}}',
      {"code": "E_INTERNAL", "message": "internal error: OverflowError"}),
     (b"Internal Server Error", "Internal Server Error"),
     (b'{"detail": NaN}', '{"detail": NaN}')],
)
async def test_a_worldservice_500_is_relayed_as_502_with_its_detail(content: bytes,
                                                                    upstream: Any) -> None:
    def ws(req: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=content)

    client, _ = client_for(ws)
    with pytest.raises(WorldServiceError) as info:
        await client.post_rebalance_plan(request())
    detail = info.value.to_detail()
    assert info.value.status_code == 502
    assert detail["code"] == "E_WORLDSERVICE_ERROR"
    assert detail["upstream_status"] == 500 and detail["upstream"] == upstream
    assert "HTTP 500" in detail["message"]
    json.dumps(info.value.to_body(), allow_nan=False)  # always valid JSON


async def test_unknown_versions_fall_back_once_and_count_it() -> None:
    bodies: list[dict[str, Any]] = []

    def legacy(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        bodies.append(body)
        if "schema_version" in body:
            return httpx.Response(422, json={"detail": [
                {"type": "extra_forbidden", "loc": ["body", "schema_version"], "msg": "x"}]})
        return httpx.Response(200, json=PLAN_V1)

    client, registry = client_for(legacy, rebalance_schema_version=2)
    result = await client.post_rebalance_plan(request())
    assert [b.get("schema_version") for b in bodies] == [2, None]
    assert result.fell_back and result.served_version == 1
    assert counter(registry, "gateway_rebalance_schema_fallback_total", route="plan") == 1


async def test_no_fallback_on_a_422_about_other_fields() -> None:
    calls = 0

    def ws(req: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"detail": {"code": "E_OVERLAY_CONFIG_REQUIRED",
                                                    "message": "overlay needs config"}})

    client, registry = client_for(ws, rebalance_schema_version=2)
    with pytest.raises(UpstreamError) as info:
        await client.post_rebalance_plan(request())
    assert info.value.status_code == 422 and calls == 1
    assert counter(registry, "gateway_rebalance_schema_fallback_total", route="plan") == 0


async def test_known_versions_mean_one_request_at_the_best_common_version() -> None:
    sent: list[Any] = []

    def ws(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/health":
            return httpx.Response(200, json={"status": "ok", "schema_versions": [1]})
        sent.append(json.loads(req.content).get("schema_version"))
        return httpx.Response(200, json=PLAN_V1)

    client, _ = client_for(ws, rebalance_schema_version=2)
    await client.refresh()
    result = await client.post_rebalance_plan(request())
    assert sent == [None] and result.sent_version == 1 and not result.fell_back


async def test_token_and_if_match_are_sent_and_replay_headers_come_back() -> None:
    seen: dict[str, str | None] = {}

    def ws(req: httpx.Request) -> httpx.Response:
        seen["auth"] = req.headers.get("authorization")
        seen["if-match"] = req.headers.get("if-match")
        return httpx.Response(200, json={**PLAN_V1, "run_id": "r1", "etag": "e1"},
                              headers={"Idempotent-Replayed": "true", "ETag": '"e1"'})

    client, _ = client_for(ws, worldservice_token="secret")
    result = await client.post_rebalance_apply(request(), if_match='"e0"')
    assert seen == {"auth": "Bearer secret", "if-match": '"e0"'}
    assert result.headers == {"idempotent-replayed": "true", "etag": '"e1"'}


PLAN_V2: dict[str, Any] = {**PLAN_V1, "schema_version": 2,
                           "alpha_metrics": {"per_world": {}, "per_strategy": {}},
                           "rebalance_intent": {"meta": {}}}


@pytest.mark.parametrize(("served", "effective_after"), [(PLAN_V1, 1), (PLAN_V2, 2)])
async def test_a_legacy_worldservice_effective_version_is_learned_from_its_answers(
        served: dict[str, Any], effective_after: int) -> None:
    def ws(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/health":
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json=served)

    client, _ = client_for(ws, rebalance_schema_version=2)
    probe = await client.refresh()
    assert probe.status == "ok" and probe.legacy and probe.schema_versions is None
    assert client.effective_version() == 1  # v1 always works with a legacy WorldService
    await client.post_rebalance_plan(request())
    assert client.effective_version() == effective_after
    # A client asking for less teaches nothing about what the configured version gets.
    await client.post_rebalance_plan(request(schema_version=1))
    assert client.effective_version() == effective_after


async def test_an_unreached_worldservice_has_no_effective_version() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    client, _ = client_for(refuse, retries={"attempts": 1})
    assert (await client.refresh()).status == "down"
    assert client.effective_version() is None
