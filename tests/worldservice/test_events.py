"""``rebalancing_planned`` events (SPEC 2.6) as published through the outbox relay."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from qmtl.contracts import (
    ALPHA_METRIC_KEYS,
    CONTROLBUS_TOPIC_REBALANCING,
    ComponentHealth,
    parse_rebalancing_planned,
)
from qmtl.controlbus import BusMessage, ControlBus, ControlBusError, Subscription

from .conftest import body, bus_events, make_settings, outbox_rows, running

OVERLAY = {"instrument_by_world": {"w1": "ES", "w2": "NQ"},
           "price_by_symbol": {"ES": 5000.0, "NQ": 20000.0}}


def _plan_hash(plan: dict[str, Any]) -> str:
    # Independent canonical JSON: sorted keys, no whitespace.
    text = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def test_v1_event_has_no_v2_keys(sqlite_dsn: str, memory_bus: ControlBus) -> None:
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=False)
    async with running(settings, controlbus=memory_bus) as ws:
        applied = (await ws.client.post(
            "/rebalancing/apply",
            json=body(run_id="v1-run", schema_version=2,
                      rebalance_intent={"meta": {"ticket": "T"}}))).json()
        await ws.wait_published()
    events = await bus_events(memory_bus)
    assert [e.data["world_id"] for e in events] == ["w1", "w2"]
    for event in events:
        assert event.type == "rebalancing_planned"
        assert event.specversion == "1.0" and event.datacontenttype == "application/json"
        data = parse_rebalancing_planned(event)
        assert "alpha_metrics" not in event.data and "rebalance_intent" not in event.data
        assert "overlay_deltas" not in event.data
        assert data.version == data.schema_version == 1
        assert data.compat_rebalance_v2 is False
        assert data.run_id == "v1-run" and data.seq == 1
        assert event.data["plan"] == applied["per_world"][data.world_id]
        expected_key = (f"rebalancing_planned:{data.world_id}:"
                        f"{_plan_hash(event.data['plan'])}:1")
        assert data.idempotency_key == expected_key


async def test_v2_event_carries_this_worlds_slice_and_the_intent(
        sqlite_dsn: str, memory_bus: ControlBus) -> None:
    request = body(run_id="v2-run", schema_version=2,
                   rebalance_intent={"meta": {"ticket": "DESK-9", "rollout": "canary"}},
                   alpha_series={"per_world": {"w1": {"returns": [0.01, -0.02, 0.03]}},
                                 "per_strategy": {"s3": {"w2": {"returns": [0.01, 0.02]}}}})
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings, controlbus=memory_bus) as ws:
        applied = (await ws.client.post("/rebalancing/apply", json=request)).json()
        await ws.wait_published()
    events = {e.data["world_id"]: e for e in await bus_events(memory_bus)}
    envelope = applied["alpha_metrics"]
    w1 = parse_rebalancing_planned(events["w1"])
    assert w1.version == w1.schema_version == 2 and w1.compat_rebalance_v2 is True
    # coverage, cut the same way: w1 has 3 returns with gains and losses (all defined);
    # s3 in w2 has 2 gains (no losing period, no drawdown); the rest has no data.
    no_data = {"observations": 0, "undefined": list(ALPHA_METRIC_KEYS)}
    assert events["w1"].data["alpha_metrics"] == {
        "per_world": {"w1": envelope["per_world"]["w1"]},
        "per_strategy": {"s1": {"w1": envelope["per_strategy"]["s1"]["w1"]},
                         "s2": {"w1": envelope["per_strategy"]["s2"]["w1"]}},
        "coverage": {"per_world": {"w1": {"observations": 3, "undefined": []}},
                     "per_strategy": {"s1": {"w1": no_data}, "s2": {"w1": no_data}}},
    }
    assert events["w2"].data["alpha_metrics"] == {
        "per_world": {"w2": envelope["per_world"]["w2"]},
        "per_strategy": {"s3": {"w2": envelope["per_strategy"]["s3"]["w2"]}},
        "coverage": {"per_world": {"w2": no_data},
                     "per_strategy": {"s3": {"w2": {"observations": 2, "undefined": [
                         "alpha_performance.profit_factor", "alpha_performance.car_mdd",
                         "alpha_performance.rar_mdd"]}}}},
    }
    slice_w2 = parse_rebalancing_planned(events["w2"]).alpha_metrics
    assert slice_w2 is not None and slice_w2.coverage is not None
    assert slice_w2.coverage.per_strategy["s3"]["w2"].observations == 2
    assert events["w2"].data["alpha_metrics"]["per_strategy"]["s3"]["w2"][
        "alpha_performance.win_ratio"] == 1.0  # both returns positive: 2/2
    for event in events.values():
        assert event.data["rebalance_intent"] == {"meta": {"ticket": "DESK-9",
                                                           "rollout": "canary"}}
        expected_key = (f"rebalancing_planned:{event.data['world_id']}:"
                        f"{_plan_hash(event.data['plan'])}:2")
        assert event.data["idempotency_key"] == expected_key


async def test_seq_strictly_increases_per_world(sqlite_dsn: str, memory_bus: ControlBus) -> None:
    async with running(make_settings(sqlite_dsn), controlbus=memory_bus) as ws:
        for i in range(4):
            # Run 2 plans only w1 (w2 untouched is still planned from the before map).
            request = body(run_id=f"seq-{i}")
            if i == 2:
                request = body(run_id="seq-2", world_alloc_before={"w1": 0.2},
                               world_alloc_after={"w1": 0.25},
                               positions=[p for p in body()["positions"]
                                          if p["world_id"] == "w1"])
            assert (await ws.client.post("/rebalancing/apply", json=request)).status_code == 200
        await ws.wait_published()
    events = [parse_rebalancing_planned(e) for e in await bus_events(memory_bus)]
    by_world: dict[str, list[int]] = {}
    for data in events:
        by_world.setdefault(data.world_id, []).append(data.seq)
    assert by_world == {"w1": [1, 2, 3, 4], "w2": [1, 2, 3]}


async def test_overlay_event_carries_this_worlds_overlay_deltas(
        sqlite_dsn: str, memory_bus: ControlBus) -> None:
    async with running(make_settings(sqlite_dsn), controlbus=memory_bus) as ws:
        applied = (await ws.client.post(
            "/rebalancing/apply", json=body(mode="overlay", overlay=OVERLAY))).json()
        await ws.wait_published()
    events = {e.data["world_id"]: e for e in await bus_events(memory_bus)}
    assert set(events) == {"w1", "w2"}
    for world_id, event in events.items():
        data = parse_rebalancing_planned(event)
        expected = [d for d in applied["overlay_deltas"] if d["world_id"] == world_id]
        assert event.data["overlay_deltas"] == expected
        assert data.plan.deltas == []


class FailingForWorld(ControlBus):
    """Unit-test wrapper (a fake around the real in-memory bus): publishes of events whose
    ``data.world_id`` is in ``failing`` raise ControlBusError; everything else goes through."""

    def __init__(self, inner: ControlBus, failing: set[str]) -> None:
        self.inner = inner
        self.url = inner.url
        self.failing = failing
        self.attempts: list[str] = []

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def publish(self, topic: str, payload: bytes) -> BusMessage:
        world_id = json.loads(payload)["data"]["world_id"]
        self.attempts.append(world_id)
        if world_id in self.failing:
            raise ControlBusError(f"simulated outage for {world_id}")
        return await self.inner.publish(topic, payload)

    def subscribe(self, topic: str, *, after: str | None = None) -> Subscription:
        return self.inner.subscribe(topic, after=after)

    async def history(self, topic: str, *, after: str | None = None,
                      limit: int = 1000) -> list[BusMessage]:
        return await self.inner.history(topic, after=after, limit=limit)

    def position_for_seq(self, seq: int) -> str:
        return self.inner.position_for_seq(seq)

    async def health(self) -> ComponentHealth:
        return await self.inner.health()


async def test_other_worlds_publish_while_one_world_fails(
        sqlite_dsn: str, memory_bus: ControlBus) -> None:
    """Unit test with a fake bus wrapper (FailingForWorld) around the real memory bus."""
    bus = FailingForWorld(memory_bus, failing={"w1"})
    async with running(make_settings(sqlite_dsn), controlbus=bus) as ws:
        for i in range(3):
            await ws.client.post("/rebalancing/apply", json=body(run_id=f"f{i}"))
        # w2's three events are delivered while every w1 publish fails.
        deadline = 200
        while len(await bus_events(memory_bus)) < 3 and deadline:
            await ws.runtime.relay.run_once()
            deadline -= 1
        delivered = [parse_rebalancing_planned(e) for e in await bus_events(memory_bus)]
        assert [(d.world_id, d.seq) for d in delivered] == [("w2", 1), ("w2", 2), ("w2", 3)]
        health = (await ws.client.get("/health")).json()
        assert health["outbox"]["pending"] == 3
        metrics = (await ws.client.get("/metrics")).text
        assert 'qmtl_worldservice_outbox_publish_failures_total{world_id="w1"}' in metrics
        # Only the head of w1 was tried each time: later w1 rows wait, keeping order.
        assert "w1" in bus.attempts
        # The outage ends: w1's events follow, in order, none lost.
        bus.failing.clear()
        ws.runtime.relay.wake()
        await ws.wait_published()
    delivered = [parse_rebalancing_planned(e) for e in await bus_events(memory_bus)]
    w1 = [(d.seq, d.run_id) for d in delivered if d.world_id == "w1"]
    assert w1 == [(1, "f0"), (2, "f1"), (3, "f2")]
    assert len({e.id for e in await bus_events(memory_bus)}) == 6


async def test_failed_rows_record_attempts_and_error(sqlite_dsn: str,
                                                     memory_bus: ControlBus) -> None:
    """Unit test with the FailingForWorld fake wrapper: the outbox keeps the failure."""
    bus = FailingForWorld(memory_bus, failing={"w1", "w2"})
    async with running(make_settings(sqlite_dsn), controlbus=bus) as ws:
        await ws.client.post("/rebalancing/apply", json=body(run_id="err"))
        while not any(r["attempts"] for r in await outbox_rows(sqlite_dsn)):
            await ws.runtime.relay.run_once()
    rows = await outbox_rows(sqlite_dsn)
    assert all(r["published_at"] is None for r in rows)
    failed = [r for r in rows if r["attempts"]]
    assert failed and all("simulated outage" in r["last_error"] for r in failed)
    assert CONTROLBUS_TOPIC_REBALANCING == "rebalancing"


async def test_a_stuck_world_does_not_fill_the_batch(sqlite_dsn: str,
                                                     memory_bus: ControlBus) -> None:
    """Unit test with the FailingForWorld fake wrapper and a batch of 2 rows: w1 keeps
    failing, yet every w2 event is delivered (w1's rows are left out of the batches)."""
    bus = FailingForWorld(memory_bus, failing={"w1"})
    settings = make_settings(sqlite_dsn, relay={"poll_interval": 0.05, "batch_size": 2,
                                                "backoff_initial": 5, "backoff_max": 5})
    async with running(settings, controlbus=bus) as ws:
        for i in range(4):
            await ws.client.post("/rebalancing/apply", json=body(run_id=f"b{i}"))
        for _ in range(20):
            if len(await bus_events(memory_bus)) == 4:
                break
            await ws.runtime.relay.run_once()
        delivered = [parse_rebalancing_planned(e) for e in await bus_events(memory_bus)]
    assert [(d.world_id, d.seq) for d in delivered] == [("w2", 1), ("w2", 2), ("w2", 3),
                                                        ("w2", 4)]
    rows = await outbox_rows(sqlite_dsn)
    w1 = [r for r in rows if r["world_id"] == "w1"]
    assert all(r["published_at"] is None for r in w1)
    assert [r["attempts"] for r in w1] == [1, 0, 0, 0]  # only the head was tried (5 s backoff)
