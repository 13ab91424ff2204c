"""GatewayClient request building and error mapping.

Unit tests: the gateway's HTTP surface is replaced by ``httpx.MockTransport``
(``_mock_gateway.MockGateway``); the real-gateway behaviour is covered in
``tests/sdk/test_client_integration.py``. The unreachable cases use a real closed port.
"""

from __future__ import annotations

import pytest

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.sdk import (
    GatewayClient,
    GatewayError,
    GatewayHTTPError,
    GatewayUnavailable,
    SyncGatewayClient,
)
from qmtl.web.server import free_port

from ._mock_gateway import FakeClock, MockGateway, v2_health

REQUEST = MultiWorldRebalanceRequest.model_validate({
    "total_equity": 1000.0, "world_alloc_before": {"w1": 0.5}, "world_alloc_after": {"w1": 0.4},
    "positions": [{"world_id": "w1", "strategy_id": "s1", "symbol": "BTC", "qty": 1.0,
                   "mark": 100.0}],
})


async def test_plan_sends_the_model_without_null_fields_and_overrides_the_version() -> None:
    gw = MockGateway()
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        await client.plan(REQUEST, schema_version=2)
    body = gw.last_body()
    assert body["schema_version"] == 2
    assert "overlay" not in body and "alpha_series" not in body
    assert gw.requests[-1].url.path == "/rebalancing/plan"


async def test_a_mapping_is_sent_as_given() -> None:
    gw = MockGateway()
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        await client.plan({"total_equity": 1, "anything": [1]})
    assert gw.last_body() == {"total_equity": 1, "anything": [1]}


async def test_apply_puts_run_id_in_the_body_and_if_match_in_a_header() -> None:
    gw = MockGateway()
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        await client.apply(REQUEST, run_id="r-1", if_match='"etag-1"')
    request = gw.requests[-1]
    assert gw.last_body()["run_id"] == "r-1"
    assert request.headers["if-match"] == '"etag-1"'


async def test_execute_sends_flags_as_query_and_the_live_header_only_when_allowed() -> None:
    gw = MockGateway()
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        await client.execute(REQUEST, per_strategy=True, submit=True, allow_live=True)
        first = gw.requests[-1]
        await client.execute(REQUEST)
        second = gw.requests[-1]
    assert dict(first.url.params) == {"per_strategy": "true", "shared_account": "false",
                                      "submit": "true"}
    assert first.headers["x-allow-live"] == "true"
    assert dict(second.url.params)["submit"] == "false"
    assert "x-allow-live" not in second.headers


async def test_the_token_is_sent_as_a_bearer_header() -> None:
    gw = MockGateway()
    async with GatewayClient("http://gw", token="s3cret", transport=gw.transport()) as client:
        await client.health()
    assert gw.requests[-1].headers["authorization"] == "Bearer s3cret"


async def test_coded_errors_keep_status_code_and_context() -> None:
    gw = MockGateway(answers={"/rebalancing/plan": (501, {"detail": {
        "code": "E_REBALANCE_MODE_UNSUPPORTED", "message": "hybrid is not supported",
        "mode": "hybrid"}})})
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.plan(REQUEST)
    err = info.value
    assert (err.status_code, err.code) == (501, "E_REBALANCE_MODE_UNSUPPORTED")
    assert err.message == "hybrid is not supported"
    assert err.context == {"mode": "hybrid"}
    assert str(err) == "E_REBALANCE_MODE_UNSUPPORTED: hybrid is not supported (HTTP 501)"


async def test_validation_lists_become_e_validation_with_the_field_paths() -> None:
    detail = [{"loc": ["body", "positions", 0, "mark"], "msg": "Input should be greater than 0",
               "type": "greater_than"}]
    gw = MockGateway(answers={"/rebalancing/plan": (422, {"detail": detail})})
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.plan(REQUEST)
    assert info.value.code == "E_VALIDATION"
    assert info.value.detail == detail
    assert info.value.message == "positions.0.mark: Input should be greater than 0"


async def test_an_error_without_json_gets_an_http_code() -> None:
    gw = MockGateway(answers={"/rebalancing/plan": (502, "Bad Gateway from proxy")})
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.plan(REQUEST)
    assert (info.value.code, info.value.detail) == ("E_HTTP_502", "Bad Gateway from proxy")


async def test_a_success_without_a_json_object_is_an_error() -> None:
    gw = MockGateway(answers={"/rebalancing/plan": (200, "not json")})
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        with pytest.raises(GatewayError, match="without a JSON object"):
            await client.plan(REQUEST)


async def test_a_degraded_health_document_on_503_is_still_read() -> None:
    gw = MockGateway(health={**v2_health(), "status": "degraded"}, health_status=503)
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        view = await client.health()
    assert view.status == "degraded"
    assert view.capabilities.rebalance_schema_version == 2


async def test_capabilities_are_cached_for_the_ttl_then_refreshed() -> None:
    gw = MockGateway()
    clock = FakeClock()
    async with GatewayClient("http://gw", transport=gw.transport(), capabilities_ttl=30,
                             clock=clock) as client:
        first = await client.capabilities()
        gw.health = v2_health(version=1, alpha=False, effective=1)
        clock.now += 29.9
        assert await client.capabilities() == first
        assert gw.health_calls() == 1
        clock.now += 0.2
        refreshed = await client.capabilities()
        assert gw.health_calls() == 2
        assert (refreshed.rebalance_schema_version, refreshed.alpha_metrics_capable) == (1, False)
        gw.health = v2_health()
        assert (await client.capabilities(refresh=True)).alpha_metrics_capable


async def test_unreachable_gateway_raises_for_calls_and_turns_capabilities_off() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with GatewayClient(url, timeout=2.0) as client:
        with pytest.raises(GatewayUnavailable) as info:
            await client.plan(REQUEST)
        assert info.value.url == f"{url}/rebalancing/plan"
        caps = await client.capabilities()
    assert not caps.reachable
    assert "connect" in (caps.reason or "")
    assert not caps.supports_alpha_metrics()


async def test_an_error_status_on_health_turns_capabilities_off_with_the_reason() -> None:
    gw = MockGateway(health={"detail": {"code": "E_UNAUTHORIZED", "message": "no token"}},
                     health_status=401)
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        caps = await client.capabilities()
    assert not caps.reachable
    assert "401" in (caps.reason or "") and "no token" in (caps.reason or "")


async def test_a_closed_client_is_not_reopened_and_aclose_is_idempotent() -> None:
    client = GatewayClient("http://gw", transport=MockGateway().transport())
    await client.health()
    await client.aclose()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.health()


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        GatewayClient("gw:8000")


def test_ws_url_follows_the_scheme() -> None:
    assert GatewayClient("http://h:1/").ws_url == "ws://h:1/ws"
    assert GatewayClient("https://h").ws_url == "wss://h/ws"


def test_sync_facade_runs_the_async_core() -> None:
    gw = MockGateway(answers={"/rebalancing/plan": (200, {"schema_version": 2})})
    with SyncGatewayClient("http://gw", transport=gw.transport()) as client:
        assert client.capabilities().alpha_metrics_capable
        assert client.plan(REQUEST) == {"schema_version": 2}
    with pytest.raises(RuntimeError, match="closed"):
        client.health()


async def test_a_bare_health_document_from_an_old_gateway_means_v1() -> None:
    gw = MockGateway(health={"ok": True})
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        view = await client.health()
    assert view.status == "unknown"
    assert view.capabilities.rebalance_schema_version == 1
    assert not view.capabilities.supports_alpha_metrics()


async def test_a_503_without_a_health_document_is_an_http_error() -> None:
    gw = MockGateway(health={"detail": {"code": "E_X", "message": "starting"}}, health_status=503)
    async with GatewayClient("http://gw", transport=gw.transport()) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.health()
    assert (info.value.status_code, info.value.code) == (503, "E_X")
