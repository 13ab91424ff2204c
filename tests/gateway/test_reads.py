"""The gateway relays the WorldService's read routes behind its own auth: allocations (with the
ETag), a run's stored response and a world's audit trail — the same documents and errors as
the WorldService gives, over real HTTP; and the SDK's read calls parse them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from qmtl.sdk import GatewayClient, GatewayHTTPError, SyncGatewayClient

from ._support import scaling_request
from .conftest import Stack


def test_reads_are_the_worldservice_documents(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    applied = httpx.post(f"{gw.url}/rebalancing/apply", json=scaling_request(run_id="r-1"))
    assert applied.status_code == 200, applied.text
    for path in ("/allocations", "/allocations?world_id=w1", "/rebalancing/runs/r-1",
                 "/worlds/w1/audit", "/worlds/w1/audit?limit=1"):
        through = httpx.get(f"{gw.url}{path}")
        direct = httpx.get(f"{ws.url}{path}")
        assert through.status_code == direct.status_code == 200, (path, through.text)
        assert through.json() == direct.json(), path
    allocations = httpx.get(f"{gw.url}/allocations")
    assert allocations.headers["ETag"] == httpx.get(f"{ws.url}/allocations").headers["ETag"]
    assert allocations.json()["worlds"]["w1"]["ratio"] == pytest.approx(0.2)
    assert httpx.get(f"{gw.url}/rebalancing/runs/r-1").json()["etag"] == applied.json()["etag"]
    entries = httpx.get(f"{gw.url}/worlds/w1/audit").json()["entries"]
    assert [(e["run_id"], e["ratio_before"], e["ratio_after"]) for e in entries] == [
        ("r-1", pytest.approx(0.3), pytest.approx(0.2))]


def test_errors_are_relayed_and_auth_applies(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, auth={"tokens": ["secret"]})
    assert httpx.get(f"{gw.url}/allocations").status_code == 401
    headers = {"Authorization": "Bearer secret"}
    missing = httpx.get(f"{gw.url}/rebalancing/runs/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == httpx.get(f"{ws.url}/rebalancing/runs/nope").json()
    assert httpx.get(f"{gw.url}/worlds/w1/audit?limit=0", headers=headers).status_code == 422
    # a run id with a slash stays one path segment on the way to the WorldService
    odd = httpx.get(f"{gw.url}/rebalancing/runs/a%2Fb", headers=headers)
    assert odd.status_code in (404, 422)


def test_an_unreachable_worldservice_is_503(stack: Stack) -> None:
    gw = stack.gateway("http://127.0.0.1:9")
    answer = httpx.get(f"{gw.url}/allocations")
    assert answer.status_code == 503
    assert answer.json()["detail"]["code"] == "E_WORLDSERVICE_UNAVAILABLE"


def test_sdk_read_calls(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)

    async def scenario() -> None:
        async with GatewayClient(gw.url) as client:
            first = await client.apply_outcome(scaling_request(run_id="sdk-1"))
            assert (first.replayed, first.run_id, first.events_published) == (False, "sdk-1", 2)
            again = await client.apply_outcome(scaling_request(run_id="sdk-1"))
            assert (again.replayed, again.events_published) == (True, 0)
            assert again.etag == first.etag == first.document["etag"]
            state = await client.allocations()
            assert state["etag"] == first.etag and set(state["worlds"]) == {"w1", "w2"}
            assert (await client.run("sdk-1"))["run_id"] == "sdk-1"
            audit = await client.audit("w1", limit=5)
            assert [e["run_id"] for e in audit["entries"]] == ["sdk-1"]
            with pytest.raises(GatewayHTTPError) as missing:
                await client.run("no-such-run")
            assert missing.value.status_code == 404 and missing.value.code == "E_NOT_FOUND"
            with pytest.raises(ValueError, match="limit"):
                await client.audit("w1", limit=0)
            assert await client.looks_like_worldservice() is False
        async with GatewayClient(ws.url) as direct:
            assert await direct.looks_like_worldservice() is True

    asyncio.run(scenario())


def test_sync_read_calls(stack: Stack) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url)
    with SyncGatewayClient(gw.url) as client:
        outcome = client.apply_outcome(scaling_request(run_id="sync-1"))
        assert not outcome.replayed and outcome.events_published == 2
        assert client.allocations(world_id="w1")["worlds"]["w1"]["ratio"] == pytest.approx(0.2)
        assert client.run("sync-1")["etag"] == outcome.etag
        assert [e["run_id"] for e in client.audit("w2")["entries"]] == ["sync-1"]
