"""Scale-out on one PostgreSQL and one Redis (issue #6 item 3), with real processes.

Topology (the one ``docs/operations/deploy.md`` documents)::

    gw-1 (qmtl gateway serve) ──HTTP──> ws-1 (qmtl worldservice serve) ─┐
    gw-2 (qmtl gateway serve) ──HTTP──> ws-2 (qmtl worldservice serve) ─┼─ PostgreSQL (store)
         │  ▲                                                           │
         │  └────────── Redis Streams: ControlBus  <── outbox relays ───┘
         └─────────────> Redis Streams: commit log

Each gateway talks to a different WorldService replica, so applies of one run through the
two gateways race in two processes against one database, and executes of one run race in
two gateways against one commit log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests._servers import PostgresServer, RedisServer
from tests.e2e._delivery import (
    WORLDS,
    RawSubscriber,
    SdkSubscriber,
    account,
    assert_exactly_once,
    bus_copies,
    bus_summary,
    closing,
    format_table,
    pg_count,
    produced_events,
    rebalance_request,
    wait_until,
)
from tests.e2e._procs import QmtlProcess, gateway_process, start_all, worldservice_process

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

DELIVERY_DEADLINE = 60.0
"""Seconds to wait for eventual delivery (a deadline, not a speed assertion)."""

COMMIT_LOG_STREAM = "qmtl:commitlog:gateway.rebalance"


@dataclass
class Cluster:
    dsn: str
    redis: RedisServer
    worldservices: list[QmtlProcess]
    gateways: list[QmtlProcess]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()[-4000:]}"
                         for p in [*self.worldservices, *self.gateways])


@pytest.fixture(scope="module")
def cluster(postgres_server: PostgresServer) -> Iterator[Cluster]:
    """Two WorldServices and two gateways on one PostgreSQL database and one redis-server."""
    bus = RedisServer()
    procs: list[QmtlProcess] = []
    try:
        bus.start()
        dsn = postgres_server.create_database("qmtl_scale_out")
        worldservices = [
            worldservice_process(dsn=dsn, controlbus=bus.url, compat_rebalance_v2=True,
                                 name=f"ws-{i}")
            for i in (1, 2)
        ]
        procs += worldservices
        # Both replicas migrate the empty database at once: the migration lock must hold.
        start_all(worldservices)
        gateways = [
            gateway_process(worldservice_url=ws.url, controlbus=bus.url,
                            rebalance_schema_version=2, alpha_metrics_capable=True,
                            commit_log=bus.url, name=f"gw-{i}")
            for i, ws in enumerate(worldservices, start=1)
        ]
        procs += gateways
        start_all(gateways)
        yield Cluster(dsn=dsn, redis=bus, worldservices=worldservices, gateways=gateways)
    finally:
        for proc in procs:
            proc.close()
        bus.close()


async def _subscribers(cluster: Cluster, *, raw_per_gateway: int = 3) -> list[RawSubscriber
                                                                              | SdkSubscriber]:
    subscribers: list[RawSubscriber | SdkSubscriber] = []
    for gateway in cluster.gateways:
        subscribers += [RawSubscriber(f"{gateway.name}/ws-{i}", gateway.ws_url)
                        for i in range(1, raw_per_gateway + 1)]
        subscribers.append(SdkSubscriber(f"{gateway.name}/sdk", gateway.url))
    await asyncio.gather(*(s.start() for s in subscribers))
    return subscribers


async def test_concurrent_applies_one_record_and_every_subscriber_gets_every_event_once(
        cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    subscribers = await _subscribers(cluster)
    async with closing(subscribers), httpx.AsyncClient(timeout=30) as http:
        # 1. The same run through both gateways at once (4 each): one record.
        same = rebalance_request(run_id="scale-same-run")
        answers = await asyncio.gather(*(
            http.post(f"{gw.url}/rebalancing/apply", json=same)
            for gw in cluster.gateways for _ in range(4)
        ))
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        bodies = [a.json() for a in answers]
        assert all(b == bodies[0] for b in bodies), "replays must return the stored response"
        assert bodies[0]["run_id"] == "scale-same-run"
        assert bodies[0]["schema_version"] == 2
        fresh = [a for a in answers if a.headers.get("idempotent-replayed") != "true"]
        assert len(fresh) == 1, "exactly one apply may record the run; the rest replay it"

        # Read back from BOTH replicas: the same stored record.
        for ws in cluster.worldservices:
            stored = await http.get(f"{ws.url}/rebalancing/runs/scale-same-run")
            assert stored.status_code == 200, stored.text
            assert stored.json() == bodies[0]
        run_filter = "WHERE run_id = $1"
        assert await pg_count(cluster.dsn, f"SELECT count(*) FROM runs {run_filter}",
                              "scale-same-run") == 1
        # One audit entry and one outbox event per world of the plan (3 worlds).
        for table in ("audit_log", "outbox"):
            assert await pg_count(cluster.dsn, f"SELECT count(*) FROM {table} {run_filter}",
                                  "scale-same-run") == len(WORLDS)

        # The same run_id with another body is refused by either gateway.
        other = rebalance_request(run_id="scale-same-run",
                                  after={"alpha": 0.1, "beta": 0.5, "gamma": 0.3})
        for gw in cluster.gateways:
            conflict = await http.post(f"{gw.url}/rebalancing/apply", json=other)
            assert conflict.status_code == 409, conflict.text
            assert conflict.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"

        # 2. A burst of distinct runs, alternating gateways, all at once.
        run_ids = [f"scale-burst-{i:02d}" for i in range(12)]
        burst = await asyncio.gather(*(
            http.post(f"{cluster.gateways[i % 2].url}/rebalancing/apply",
                      json=rebalance_request(run_id=run_id))
            for i, run_id in enumerate(run_ids)
        ))
        assert [a.status_code for a in burst] == [200] * len(run_ids), [a.text for a in burst]
        assert all(a.headers.get("idempotent-replayed") != "true" for a in burst)

        produced = await produced_events(cluster.dsn, run_ids=["scale-same-run", *run_ids])
        # 13 runs × 3 worlds; each world's seq is 1..13 with no gap or repeat across replicas.
        assert len(produced) == 13 * len(WORLDS)
        for world in WORLDS:
            assert sorted(p.seq for p in produced if p.world_id == world) == list(range(1, 14))
        produced_ids = {p.event_id for p in produced}
        await wait_until(lambda: all(s.has_all(produced_ids) for s in subscribers),
                         timeout=DELIVERY_DEADLINE, what="every subscriber to get every event")
        await asyncio.sleep(0.5)  # let any duplicate that is still in flight arrive too

    rows = [account(produced, s) for s in subscribers]
    copies = bus_copies(cluster.redis.url)
    with capsys.disabled():
        print(format_table("scale-out: 2 WorldServices + 2 gateways, PostgreSQL + Redis "
                           f"({len(subscribers)} subscribers)", rows))
        print(bus_summary(copies, produced))
    # Two relays share the outbox under one lease: each event is published exactly once.
    assert all(copies[p.event_id] == 1 for p in produced), bus_summary(copies, produced)
    assert_exactly_once(rows)
    assert all(not s.errors for s in subscribers), [s.errors for s in subscribers]
    # Relay seqs are Redis stream positions: both gateways number every event alike, so a
    # client can resume on either gateway with the seq it last saw.
    relay_seq = {d.event_id: d.relay_seq for d in subscribers[0].deliveries}
    for subscriber in subscribers[1:]:
        assert {d.event_id: d.relay_seq for d in subscriber.deliveries} == relay_seq


async def test_repeated_execute_run_id_writes_one_set_of_commit_log_batches(
        cluster: Cluster) -> None:
    client = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    try:
        before = client.xlen(COMMIT_LOG_STREAM)
        body = rebalance_request(run_id="scale-exec-run")
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(*(
                http.post(f"{gw.url}/rebalancing/execute", json=body,
                          params={"submit": "true"}, headers={"X-Allow-Live": "true"})
                for gw in cluster.gateways for _ in range(3)
            ))
            assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
            results = [a.json() for a in answers]
            fresh = [a for a in answers if a.headers.get("idempotent-replayed") != "true"]
            assert len(fresh) == 1, "exactly one execute may write; the rest replay it"
            assert all(r["submitted"] is True for r in results)
            batch_ids = results[0]["batch_ids"]
            assert all(r["batch_ids"] == batch_ids for r in results)
            # Hand count: alpha (scale 0.5) and beta (scale 1.5) have orders, gamma (1.0)
            # has none -> 2 per-world batches.
            assert len(batch_ids) == 2

            entries: Any = client.xrange(COMMIT_LOG_STREAM)
            assert len(entries) - before == 2
            written = [fields["batch_id"] for _id, fields in entries]
            assert sorted(b for b in written if b in batch_ids) == sorted(batch_ids)
            records = [json.loads(fields["record"]) for _id, fields in entries
                       if fields["batch_id"] in batch_ids]
            assert {r[3]["world_id"] for r in records} == {"alpha", "beta"}
            assert all(r[0] == "gateway.rebalance" and r[3]["scope"] == "per_world"
                       for r in records)

            # Another body under the same run_id: refused by both gateways, nothing written.
            other = rebalance_request(run_id="scale-exec-run",
                                      after={"alpha": 0.1, "beta": 0.5, "gamma": 0.3})
            for gw in cluster.gateways:
                conflict = await http.post(f"{gw.url}/rebalancing/execute", json=other,
                                           params={"submit": "true"},
                                           headers={"X-Allow-Live": "true"})
                assert conflict.status_code == 409, conflict.text
                assert conflict.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
        assert client.xlen(COMMIT_LOG_STREAM) - before == 2
    finally:
        client.close()
