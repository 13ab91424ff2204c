"""The gateway on Redis Streams: ControlBus consumer and commit log against a real
redis-server started by the ``redis_server`` fixture."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from qmtl.controlbus import create_controlbus
from qmtl.gateway.commitlog import CommitRecord, create_commit_log
from tests._servers import RedisServer

from ._events import encoded, planned_event
from ._support import scaling_request
from .conftest import RunningGateway, Stack

pytestmark = pytest.mark.redis

LIVE = {"X-Allow-Live": "true"}


def tail(url: str) -> list[CommitRecord]:
    async def read() -> list[CommitRecord]:
        log = create_commit_log(url)
        await log.start()
        try:
            return await log.tail(limit=100)
        finally:
            await log.close()

    return asyncio.run(read())


async def publish(url: str, payload: bytes) -> int:
    bus = create_controlbus(url)
    await bus.start()
    try:
        return (await bus.publish("rebalancing", payload)).seq
    finally:
        await bus.close()


async def collect(gw: RunningGateway, count: int, **subscribe: Any) -> tuple[dict[str, Any],
                                                                           list[dict[str, Any]]]:
    async with connect(gw.ws_url, open_timeout=20) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"], **subscribe}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 20))
        events = [json.loads(await asyncio.wait_for(ws.recv(), 20)) for _ in range(count)]
    return answer, events


def test_commit_log_on_redis_submit_replay_and_conflict(stack: Stack, redis_url: str) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, commit_log=redis_url)
    first = httpx.post(f"{gw.url}/rebalancing/execute?submit=true",
                       json=scaling_request(run_id="redis-1"), headers=LIVE, timeout=30)
    assert first.status_code == 200, first.text
    [record] = tail(redis_url)
    assert record.batch_id == first.json()["batch_ids"][0]
    assert record.to_wire()[0] == "gateway.rebalance"
    assert record.payload["orders"] == first.json()["orders_per_world"]["w1"]
    replay = httpx.post(f"{gw.url}/rebalancing/execute?submit=true",
                        json=scaling_request(run_id="redis-1"), headers=LIVE, timeout=30)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    conflict = httpx.post(f"{gw.url}/rebalancing/execute?submit=true",
                          json=scaling_request(run_id="redis-1", min_trade_notional=1.0),
                          headers=LIVE, timeout=30)
    assert conflict.status_code == 409
    assert len(tail(redis_url)) == 1


def test_redis_down_means_503_and_nothing_written(stack: Stack, redis_server: RedisServer,
                                                  redis_url: str) -> None:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, commit_log=redis_url)
    redis_server.stop()
    try:
        response = httpx.post(f"{gw.url}/rebalancing/execute?submit=true&per_strategy=true",
                              json=scaling_request(run_id="redis-down"), headers=LIVE,
                              timeout=60)
        assert response.status_code == 503
        assert response.json()["detail"]["code"] == "E_COMMITLOG_UNAVAILABLE"
        health = httpx.get(f"{gw.url}/health", timeout=60).json()
        assert health["commit_log"]["status"] == "down"
        assert health["status"] == "degraded"
    finally:
        redis_server.start()
    assert tail(redis_url) == []
    again = httpx.post(f"{gw.url}/rebalancing/execute?submit=true&per_strategy=true",
                       json=scaling_request(run_id="redis-down"), headers=LIVE, timeout=30)
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert len(tail(redis_url)) == 2


async def test_events_through_redis_streams_reach_websocket_subscribers(
    stack: Stack, redis_url: str
) -> None:
    ws = stack.worldservice(compat=True, controlbus=redis_url)
    gw = stack.gateway(ws.url, controlbus=redis_url, rebalance_schema_version=2,
                       alpha_metrics_capable=True)

    async with connect(gw.ws_url, open_timeout=20) as client:
        await client.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"]}))
        answer = json.loads(await asyncio.wait_for(client.recv(), 20))
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"{gw.url}/rebalancing/apply",
                                       json=scaling_request(run_id="redis-apply"))
        assert response.status_code == 200, response.text
        events = [json.loads(await asyncio.wait_for(client.recv(), 20)) for _ in range(2)]
    assert answer["recovered"] is False
    assert {e["data"]["world_id"] for e in events} == {"w1", "w2"}
    assert all(e["type"] == "rebalancing.planned" and e["data"]["run_id"] == "redis-apply"
               for e in events)
    assert events[0]["seq"] < events[1]["seq"]


async def test_seq_is_shared_across_gateways_on_one_redis(stack: Stack, redis_url: str) -> None:
    """A client may resume on another gateway: seq is the Redis stream position."""
    seqs = [await publish(redis_url, encoded(planned_event("w1"))) for _ in range(3)]
    gw_a = stack.gateway(controlbus=redis_url)
    gw_b = stack.gateway(controlbus=redis_url)
    first, from_a = await collect(gw_a, 3, since_seq=0)
    answer, from_b = await collect(gw_b, 2, since_seq=from_a[0]["seq"], epoch=first["epoch"])
    assert [e["seq"] for e in from_a] == seqs
    # One Redis stream, one numbering: both gateways name the same epoch.
    assert answer["epoch"] == first["epoch"]
    assert answer["recovered"] is True
    assert [e["id"] for e in from_b] == [e["id"] for e in from_a[1:]]
    assert [e["seq"] for e in from_b] == seqs[1:]


async def test_consumer_survives_a_redis_restart(stack: Stack, redis_server: RedisServer,
                                                 redis_url: str) -> None:
    gw = stack.gateway(controlbus=redis_url)
    before = planned_event("w1")
    await publish(redis_url, encoded(before))
    redis_server.stop()
    await asyncio.sleep(0.5)  # the consumer notices and backs off
    redis_server.start()
    after = planned_event("w1")
    await publish(redis_url, encoded(after))
    _, events = await collect(gw, 2, since_seq=0)
    assert [e["id"] for e in events] == [before.id, after.id]
