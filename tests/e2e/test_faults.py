"""Fault injection with real processes (issue #6 item 4): nothing lost, nothing doubled.

One WorldService (``qmtl worldservice serve``, PostgreSQL store, Redis Streams ControlBus)
behind one gateway (``qmtl gateway serve``, same Redis). Subscribers are plain ``websockets``
connections and ``qmtl.sdk`` event streams. Every scenario prints, per subscriber, the events
produced (outbox rows in PostgreSQL) / delivered / duplicated / lost, and asserts lost == 0,
duplicated == 0 and per-world order.

1. kill -9 the WorldService between commit and publish: Redis is down, the apply commits,
   the relay has tried and failed; the process is killed, Redis returns, and a NEW
   WorldService process on the same database publishes the event.
2. redis-server stops and restarts in the middle of a stream of applies: every apply
   succeeds, the events arrive after Redis returns, in per-world order.
3. the gateway restarts (SIGTERM, then kill -9) while SDK clients are subscribed, and runs
   are applied while it is down: the clients resume with ``since_seq`` and are told the
   replay was complete (``recovered``).
4. the relay publishes events a second time (what a crash between publish and mark leads
   to): the bus holds two copies, each client gets one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING
from qmtl.controlbus import RedisStreamsControlBus
from tests._servers import PostgresServer, RedisServer
from tests.e2e._delivery import (
    WORLDS,
    Accounting,
    Produced,
    RawSubscriber,
    SdkSubscriber,
    Subscriber,
    account,
    assert_exactly_once,
    bus_copies,
    bus_summary,
    closing,
    format_table,
    pg_count,
    pg_payloads,
    produced_events,
    rebalance_request,
    wait_until,
)
from tests.e2e._procs import QmtlProcess, gateway_process, worldservice_process

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

DELIVERY_DEADLINE = 90.0
"""Seconds to wait for eventual delivery after a fault (the relay backs off exponentially
while Redis is down); a deadline, not a speed assertion."""


@dataclass
class FaultCluster:
    dsn: str
    redis: RedisServer
    ws: QmtlProcess
    gw: QmtlProcess
    retired: list[QmtlProcess] = field(default_factory=list)

    def new_worldservice(self, *, name: str) -> QmtlProcess:
        """A new WorldService process on the same database, bus and port as ``ws``."""
        return worldservice_process(dsn=self.dsn, controlbus=self.redis.url,
                                    compat_rebalance_v2=True, name=name, port=self.ws.port)


@pytest.fixture(scope="module")
def faults(postgres_server: PostgresServer) -> Iterator[FaultCluster]:
    bus = RedisServer()
    procs: list[QmtlProcess] = []
    cluster: FaultCluster | None = None
    try:
        bus.start()
        dsn = postgres_server.create_database("qmtl_faults")
        ws = worldservice_process(dsn=dsn, controlbus=bus.url, compat_rebalance_v2=True,
                                  name="ws-faults")
        procs.append(ws)
        ws.start()
        gw = gateway_process(worldservice_url=ws.url, controlbus=bus.url,
                             rebalance_schema_version=2, alpha_metrics_capable=True,
                             name="gw-faults")
        procs.append(gw)
        gw.start()
        cluster = FaultCluster(dsn=dsn, redis=bus, ws=ws, gw=gw)
        yield cluster
    finally:
        for proc in procs + (cluster.retired + [cluster.ws] if cluster else []):
            proc.close()
        bus.close()


@pytest.fixture
def cluster(faults: FaultCluster) -> FaultCluster:
    """The module's processes, all running (an earlier failed test may have left one down)."""
    faults.redis.start()
    faults.ws.start()
    faults.gw.start()
    return faults


def _report(capsys: pytest.CaptureFixture[str], cluster: FaultCluster, title: str,
            produced: list[Produced], rows: list[Accounting]) -> None:
    """Print the table and the bus line; every produced event must be on the bus."""
    copies = bus_copies(cluster.redis.url)
    with capsys.disabled():
        print(format_table(title, rows))
        print(bus_summary(copies, produced))
    assert {p.event_id for p in produced} <= copies.keys()


async def _apply(http: httpx.AsyncClient, base_url: str, run_id: str) -> dict[str, Any]:
    answer = await http.post(f"{base_url}/rebalancing/apply",
                             json=rebalance_request(run_id=run_id))
    assert answer.status_code == 200, f"{run_id}: {answer.status_code} {answer.text}"
    assert answer.headers.get("idempotent-replayed") != "true", run_id
    body: dict[str, Any] = answer.json()
    return body


async def _all_delivered(cluster: FaultCluster, subscribers: Sequence[Subscriber],
                         run_ids: list[str]) -> None:
    """Wait until every subscriber has every event of ``run_ids`` (of its worlds)."""
    produced = await produced_events(cluster.dsn, run_ids=run_ids)
    assert len(produced) == len(run_ids) * len(WORLDS)

    def done() -> bool:
        return all(account(produced, s, world_ids=_worlds(s)).lost == 0 for s in subscribers)

    try:
        await wait_until(done, timeout=DELIVERY_DEADLINE,
                         what=f"every subscriber to receive the events of {run_ids}")
    except AssertionError:
        rows = [account(produced, s, world_ids=_worlds(s)) for s in subscribers]
        unpublished = await pg_count(
            cluster.dsn, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        raise AssertionError(
            f"{format_table('deliveries so far', rows)}\nunpublished outbox rows: "
            f"{unpublished}\n--- {cluster.ws.name} ---\n{cluster.ws.log()[-6000:]}"
            f"\n--- {cluster.gw.name} ---\n{cluster.gw.log()[-6000:]}") from None


def _worlds(subscriber: Subscriber) -> list[str] | None:
    """The world filter of a subscriber named ``…-<world>`` (all worlds otherwise)."""
    suffix = subscriber.name.rsplit("-", 1)[-1]
    return [suffix] if suffix in WORLDS else None


async def _unpublished(dsn: str, run_id: str, *, failed: bool = False) -> int:
    query = "SELECT count(*) FROM outbox WHERE run_id = $1 AND published_at IS NULL"
    if failed:
        query += " AND attempts > 0 AND last_error IS NOT NULL"
    return await pg_count(dsn, query, run_id)


async def test_worldservice_killed_between_commit_and_publish(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    subscribers: list[Any] = [RawSubscriber("gw/ws-1", cluster.gw.ws_url),
                              RawSubscriber("gw/ws-2", cluster.gw.ws_url),
                              SdkSubscriber("gw/sdk", cluster.gw.url)]
    await asyncio.gather(*(s.start() for s in subscribers))
    async with closing(subscribers), httpx.AsyncClient(timeout=30) as http:
        await _apply(http, cluster.gw.url, "f1-before")
        await _all_delivered(cluster, subscribers, ["f1-before"])
        # The relay marks rows after publishing them: wait for the mark too, so that the
        # outbox holds nothing but the run applied during the outage.
        await wait_until(lambda: _all_published(cluster.dsn, "f1-before"),
                         timeout=DELIVERY_DEADLINE, what="f1-before to be marked published")

        await asyncio.to_thread(cluster.redis.stop)
        await _apply(http, cluster.gw.url, "f1-committed")
        # Committed: the run reads back and its events wait in the outbox ...
        stored = await http.get(f"{cluster.ws.url}/rebalancing/runs/f1-committed")
        assert stored.status_code == 200, stored.text
        # ... and the relay has tried to publish them and failed (Redis is down).
        await wait_until(lambda: _failed_publish(cluster.dsn, "f1-committed"),
                         timeout=DELIVERY_DEADLINE, what="the relay to fail publishing")
        health = (await http.get(f"{cluster.ws.url}/health")).json()
        assert health["controlbus"]["status"] == "down"
        assert health["outbox"]["pending"] == len(WORLDS)

        await asyncio.to_thread(cluster.ws.kill)  # kill -9: no shutdown code runs
        assert await _unpublished(cluster.dsn, "f1-committed") == len(WORLDS)
        await asyncio.to_thread(cluster.redis.start)
        replacement = cluster.new_worldservice(name="ws-faults-2")
        cluster.retired.append(cluster.ws)
        cluster.ws = replacement
        await asyncio.to_thread(replacement.start)

        await _all_delivered(cluster, subscribers, ["f1-before", "f1-committed"])
        await asyncio.sleep(0.5)  # let any duplicate that is still in flight arrive too
        assert await _unpublished(cluster.dsn, "f1-committed") == 0

    produced = await produced_events(cluster.dsn, run_ids=["f1-before", "f1-committed"])
    rows = [account(produced, s) for s in subscribers]
    _report(capsys, cluster, "fault 1: kill -9 WorldService between commit and publish",
            produced, rows)
    assert_exactly_once(rows)
    assert all(not s.errors for s in subscribers), [s.errors for s in subscribers]


async def _all_published(dsn: str, run_id: str) -> bool:
    return await _unpublished(dsn, run_id) == 0


async def _failed_publish(dsn: str, run_id: str) -> bool:
    return await _unpublished(dsn, run_id, failed=True) > 0


async def test_redis_restart_during_a_stream_of_applies(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    subscribers: list[Any] = [RawSubscriber("gw/ws-1", cluster.gw.ws_url),
                              RawSubscriber("gw/ws-2", cluster.gw.ws_url),
                              SdkSubscriber("gw/sdk", cluster.gw.url),
                              SdkSubscriber("gw/sdk-beta", cluster.gw.url, world_ids=["beta"])]
    await asyncio.gather(*(s.start() for s in subscribers))
    run_ids = [f"f2-{i:02d}" for i in range(24)]
    during_outage: list[str] = []
    pending_at_restart = 0
    async with closing(subscribers), httpx.AsyncClient(timeout=30) as http:
        for i, run_id in enumerate(run_ids):
            if i == 8:
                await asyncio.to_thread(cluster.redis.stop)
            if i == 16:
                pending_at_restart = await pg_count(
                    cluster.dsn, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
                await asyncio.to_thread(cluster.redis.start)
            await _apply(http, cluster.gw.url, run_id)  # every apply succeeds
            if 8 <= i < 16:
                during_outage.append(run_id)
            await asyncio.sleep(0.25)
        # The outage really held events back: those applied while Redis was down.
        assert pending_at_restart >= len(WORLDS), pending_at_restart
        await _all_delivered(cluster, subscribers, run_ids)
        await asyncio.sleep(0.5)  # let any duplicate that is still in flight arrive too

    produced = await produced_events(cluster.dsn, run_ids=run_ids)
    assert {p.run_id for p in produced} >= set(during_outage)
    rows = [account(produced, s, world_ids=_worlds(s)) for s in subscribers]
    _report(capsys, cluster, "fault 2: redis-server stopped and restarted during 24 applies",
            produced, rows)
    assert_exactly_once(rows)
    assert all(not s.errors for s in subscribers), [s.errors for s in subscribers]


async def test_gateway_restart_sdk_clients_resume(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    subscribers = [SdkSubscriber("sdk-1", cluster.gw.url),
                   SdkSubscriber("sdk-2", cluster.gw.url),
                   SdkSubscriber("sdk-alpha", cluster.gw.url, world_ids=["alpha"])]
    await asyncio.gather(*(s.start() for s in subscribers))
    applied: list[str] = []

    async def apply_runs(http: httpx.AsyncClient, base_url: str, prefix: str, n: int) -> None:
        for i in range(n):
            run_id = f"f3-{prefix}-{i}"
            await _apply(http, base_url, run_id)
            applied.append(run_id)

    async with closing(subscribers), httpx.AsyncClient(timeout=30) as http:
        await apply_runs(http, cluster.gw.url, "before", 3)
        await _all_delivered(cluster, subscribers, applied)
        # Graceful restart (SIGTERM): runs applied at the WorldService while it is down.
        await asyncio.to_thread(cluster.gw.stop)
        await apply_runs(http, cluster.ws.url, "gw-stopped", 3)
        await asyncio.to_thread(cluster.gw.start)
        await apply_runs(http, cluster.gw.url, "after-restart", 3)
        await _all_delivered(cluster, subscribers, applied)
        # kill -9 the gateway, same again.
        await asyncio.to_thread(cluster.gw.kill)
        await apply_runs(http, cluster.ws.url, "gw-killed", 2)
        await asyncio.to_thread(cluster.gw.start)
        await apply_runs(http, cluster.gw.url, "after-kill", 2)
        await _all_delivered(cluster, subscribers, applied)
        await asyncio.sleep(0.5)  # let any duplicate that is still in flight arrive too

    produced = await produced_events(cluster.dsn, run_ids=applied)
    rows = [account(produced, s, world_ids=_worlds(s)) for s in subscribers]
    _report(capsys, cluster,
            "fault 3: gateway restarted (SIGTERM, then kill -9) under 3 SDK clients",
            produced, rows)
    assert_exactly_once(rows)
    assert all(not s.errors for s in subscribers), [s.errors for s in subscribers]
    for subscriber in subscribers:
        stream = subscriber.stream
        assert stream.reconnects >= 2, (subscriber.name, stream.subscriptions)
        resumed = [s for s in stream.subscriptions if s.resubscription]
        assert resumed and all(s.since_seq is not None for s in resumed)
        assert stream.recovered, (subscriber.name, stream.subscriptions)


async def test_events_republished_by_the_relay_reach_clients_once(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """A relay that crashes after publishing but before marking publishes again on restart
    (at least once). The copies are put on the bus the way the relay publishes — the
    outbox payload through the Redis ControlBus — and must not reach a client twice."""
    subscribers: list[Any] = [RawSubscriber("gw/ws-1", cluster.gw.ws_url),
                              SdkSubscriber("gw/sdk", cluster.gw.url)]
    await asyncio.gather(*(s.start() for s in subscribers))
    async with closing(subscribers), httpx.AsyncClient(timeout=30) as http:
        await _apply(http, cluster.gw.url, "f4-published-twice")
        await _all_delivered(cluster, subscribers, ["f4-published-twice"])
        payloads = await pg_payloads(cluster.dsn, "f4-published-twice")
        bus = RedisStreamsControlBus(cluster.redis.url)
        try:
            for payload in payloads:
                await bus.publish(CONTROLBUS_TOPIC_REBALANCING, payload)
        finally:
            await bus.close()
        # A later run is a sentinel: once its events arrive, the copies before it were read.
        await _apply(http, cluster.gw.url, "f4-sentinel")
        await _all_delivered(cluster, subscribers, ["f4-published-twice", "f4-sentinel"])
        await asyncio.sleep(0.5)

    produced = await produced_events(cluster.dsn, run_ids=["f4-published-twice", "f4-sentinel"])
    rows = [account(produced, s) for s in subscribers]
    _report(capsys, cluster, "fault 4: the relay publishes events a second time", produced,
            rows)
    copies = bus_copies(cluster.redis.url)
    assert all(copies[p.event_id] == 2 for p in produced if p.run_id == "f4-published-twice")
    assert_exactly_once(rows)
    assert all(not s.errors for s in subscribers), [s.errors for s in subscribers]
