"""The outbox relay against a real redis-server: outages, restarts, order, no loss."""

from __future__ import annotations

from collections import defaultdict

import pytest

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, decode_event, parse_rebalancing_planned
from qmtl.controlbus import RedisStreamsControlBus
from tests._servers import RedisServer

from .conftest import body, make_settings, outbox_rows, running

pytestmark = pytest.mark.redis


async def _redis_events(url: str) -> list[tuple[str, str, int, str]]:
    """(event id, world, seq, run_id) of every event in the Redis stream, in stream order."""
    reader = RedisStreamsControlBus(url)
    try:
        messages = await reader.history(CONTROLBUS_TOPIC_REBALANCING, limit=10_000)
    finally:
        await reader.close()
    result = []
    for message in messages:
        event = decode_event(message.payload)
        data = parse_rebalancing_planned(event)
        result.append((event.id, data.world_id, data.seq, data.run_id))
    return result


def _assert_complete_and_ordered(events: list[tuple[str, str, int, str]], runs: int) -> None:
    ids = [e[0] for e in events]
    assert len(ids) == len(set(ids)) == 2 * runs  # none lost, none duplicated
    by_world: dict[str, list[int]] = defaultdict(list)
    for _, world_id, seq, _ in events:
        by_world[world_id].append(seq)
    assert by_world == {"w1": list(range(1, runs + 1)), "w2": list(range(1, runs + 1))}


async def test_events_survive_a_redis_outage(sqlite_dsn: str, redis_server: RedisServer,
                                             redis_url: str) -> None:
    settings = make_settings(sqlite_dsn, controlbus=redis_url)
    async with running(settings) as ws:
        assert (await ws.client.post("/rebalancing/apply", json=body(run_id="o0"))).status_code \
            == 200
        await ws.wait_published()
        redis_server.stop()
        for i in range(1, 5):
            response = await ws.client.post("/rebalancing/apply", json=body(run_id=f"o{i}"))
            assert response.status_code == 200, response.text  # apply never needs the bus
        health = (await ws.client.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["controlbus"]["status"] == "down"
        assert health["store"]["status"] == "ok"
        assert health["outbox"]["pending"] > 0
        metrics = (await ws.client.get("/metrics")).text
        assert "qmtl_worldservice_outbox_pending 0.0" not in metrics
        redis_server.start()
        await ws.wait_published()
        assert (await ws.client.get("/health")).json()["status"] == "ok"
    _assert_complete_and_ordered(await _redis_events(redis_url), runs=5)
    rows = await outbox_rows(sqlite_dsn)
    assert all(r["published_at"] is not None for r in rows)
    assert any(r["attempts"] > 1 for r in rows)  # some rows were retried


async def test_relay_resumes_after_a_restart(sqlite_dsn: str, redis_server: RedisServer,
                                             redis_url: str) -> None:
    settings = make_settings(sqlite_dsn, controlbus=redis_url)
    redis_server.stop()
    async with running(settings) as ws:
        for i in range(3):
            response = await ws.client.post("/rebalancing/apply", json=body(run_id=f"r{i}"))
            assert response.status_code == 200
    # The process is gone between commit and publish: the rows wait in the store.
    pending = [r for r in await outbox_rows(sqlite_dsn) if r["published_at"] is None]
    assert len(pending) == 6
    redis_server.start()
    async with running(settings) as ws:
        await ws.wait_published()
    _assert_complete_and_ordered(await _redis_events(redis_url), runs=3)
