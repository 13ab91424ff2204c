"""Two WorldService instances on one real PostgreSQL: one record per run_id, unique
per-world seqs, and relays that do not publish twice."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import pytest
import sqlalchemy as sa

from qmtl.contracts import parse_rebalancing_planned
from qmtl.controlbus import ControlBus
from qmtl.worldservice.store.database import Database
from qmtl.worldservice.store.outbox import RELAY_LOCK_KEY

from .conftest import body, bus_events, make_settings, outbox_rows, running, table_counts

pytestmark = pytest.mark.postgres


async def test_concurrent_same_run_id_on_two_instances_makes_one_record(
        postgres_dsn: str) -> None:
    async with running(make_settings(postgres_dsn)) as a, \
            running(make_settings(postgres_dsn)) as b:
        for i in range(5):
            request = body(run_id=f"race-{i}")
            first, second = await asyncio.gather(
                a.client.post("/rebalancing/apply", json=request),
                b.client.post("/rebalancing/apply", json=request),
            )
            assert first.status_code == second.status_code == 200, (first.text, second.text)
            assert first.content == second.content
            replayed = [r.headers.get("idempotent-replayed") for r in (first, second)]
            assert replayed.count("true") == 1 and replayed.count(None) == 1
    counts = await table_counts(postgres_dsn)
    assert counts["runs"] == 5
    assert counts["outbox"] == counts["audit_log"] == 10


async def test_concurrent_applies_get_unique_consecutive_seqs(postgres_dsn: str) -> None:
    async with running(make_settings(postgres_dsn)) as a, \
            running(make_settings(postgres_dsn)) as b:
        responses = await asyncio.gather(*[
            (a if i % 2 else b).client.post("/rebalancing/apply", json=body(run_id=f"c{i}"))
            for i in range(12)
        ])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    rows = await outbox_rows(postgres_dsn)
    by_world: dict[str, list[int]] = defaultdict(list)
    for row in rows:  # id order = insertion order
        by_world[row["world_id"]].append(row["seq"])
    assert by_world == {"w1": list(range(1, 13)), "w2": list(range(1, 13))}


async def test_two_relays_publish_each_event_once_in_order(postgres_dsn: str,
                                                           memory_bus: ControlBus) -> None:
    async with running(make_settings(postgres_dsn), controlbus=memory_bus) as a, \
            running(make_settings(postgres_dsn), controlbus=memory_bus) as b:
        for i in range(10):
            ws = a if i % 2 else b
            assert (await ws.client.post("/rebalancing/apply",
                                         json=body(run_id=f"p{i}"))).status_code == 200
        await a.wait_published()
        await b.wait_published()
    events = await bus_events(memory_bus)
    ids = Counter(e.id for e in events)
    assert len(ids) == 20 and set(ids.values()) == {1}
    seqs: dict[str, list[int]] = defaultdict(list)
    for event in events:
        data = parse_rebalancing_planned(event)
        seqs[data.world_id].append(data.seq)
    assert seqs == {"w1": list(range(1, 11)), "w2": list(range(1, 11))}


async def test_full_flow_on_postgres(postgres_dsn: str, memory_bus: ControlBus) -> None:
    settings = make_settings(postgres_dsn, compat_rebalance_v2=True)
    async with running(settings, controlbus=memory_bus) as ws:
        upsert = await ws.client.post("/allocations",
                                      json={"run_id": "seed", "world_alloc": {"w1": 0.3,
                                                                              "w2": 0.2}})
        etag = upsert.headers["etag"]
        applied = await ws.client.post(
            "/rebalancing/apply", json=body(run_id="pg-1", schema_version=2,
                                            world_alloc_before=None),
            headers={"If-Match": etag})
        replay = await ws.client.post(
            "/rebalancing/apply", json=body(run_id="pg-1", schema_version=2,
                                            world_alloc_before=None))
        conflict = await ws.client.post("/rebalancing/apply", json=body(run_id="pg-1"))
        audit = (await ws.client.get("/worlds/w1/audit")).json()
        run = await ws.client.get("/rebalancing/runs/pg-1")
        await ws.wait_published()
    assert applied.status_code == 200, applied.text
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == applied.content
    assert conflict.status_code == 409
    assert run.content == applied.content
    assert audit["entries"][0]["ratio_before"] == 0.3
    events = [parse_rebalancing_planned(e) for e in await bus_events(memory_bus)]
    assert [(d.world_id, d.seq, d.schema_version) for d in events] == [("w1", 1, 2),
                                                                        ("w2", 1, 2)]


async def test_relay_publishes_nothing_while_another_replica_holds_the_lease(
        postgres_dsn: str, memory_bus: ControlBus) -> None:
    holder = Database.create(postgres_dsn)
    try:
        async with running(make_settings(postgres_dsn), controlbus=memory_bus) as ws:
            async with holder.engine.connect() as lease:
                await lease.execute(sa.select(sa.func.pg_advisory_lock(RELAY_LOCK_KEY)))
                await lease.commit()
                response = await ws.client.post("/rebalancing/apply", json=body(run_id="l"))
                assert response.status_code == 200
                result = await ws.runtime.relay.run_once()
                assert result.leased is False
                assert await bus_events(memory_bus) == []
                assert (await ws.client.get("/health")).json()["outbox"]["pending"] == 2
                await lease.execute(sa.select(sa.func.pg_advisory_unlock(RELAY_LOCK_KEY)))
                await lease.commit()
            await ws.wait_published()
    finally:
        await holder.dispose()
    assert len(await bus_events(memory_bus)) == 2
