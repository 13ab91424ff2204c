"""Commit-log contract (SPEC 4): atomic, idempotent by run_id, same on SQLite and Redis."""

from __future__ import annotations

import asyncio
import json

import pytest

from qmtl.contracts.errors import CommitLogUnavailable, RunIdConflict
from qmtl.gateway.commitlog import AppendResult, CommitLog, CommitRecord

from .conftest import Backend, batch


async def test_append_then_tail_gives_back_the_exact_wire_records(log: CommitLog) -> None:
    records = [batch("b1", world="w1"), batch("b2", world="w2", ts_ms=1_700_000_000_001),
               batch("b3", note="ünïcode ✓", nothing=None)]

    result = await log.append(records, run_id=None, body_hash="h", response={"ok": True})
    tail = await log.tail()

    assert result == AppendResult(batch_ids=["b1", "b2", "b3"], replayed=False, response=None)
    assert tail == records
    wire = [r.to_wire() for r in tail]
    assert wire[0] == ["gateway.rebalance", 1_700_000_000_000, "b1", records[0].payload]
    assert wire[1][:3] == ["gateway.rebalance", 1_700_000_000_001, "b2"]
    # Stored as given: same JSON text, including key order and the nested orders.
    assert [json.dumps(w) for w in wire] == [json.dumps(r.to_wire()) for r in records]
    assert list(tail[2].payload) == list(records[2].payload)


async def test_tail_returns_the_newest_newest_last(log: CommitLog) -> None:
    for i in range(5):
        await log.append([batch(f"b{i}")], run_id=None, body_hash=f"h{i}", response={})

    assert [r.batch_id for r in await log.tail(limit=2)] == ["b3", "b4"]
    assert [r.batch_id for r in await log.tail()] == ["b0", "b1", "b2", "b3", "b4"]
    assert await log.tail(limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        await log.tail(limit=-1)


async def test_records_survive_reopening(backend: Backend, log: CommitLog) -> None:
    await log.append([batch("b1"), batch("b2")], run_id="r1", body_hash="h", response={"n": 1})
    await log.close()

    reopened = backend.make()
    await reopened.start()

    assert [r.batch_id for r in await reopened.tail()] == ["b1", "b2"]
    again = await reopened.append([batch("b9")], run_id="r1", body_hash="h", response={})
    assert again.replayed and again.response == {"n": 1}


async def test_a_repeated_run_id_replays_the_stored_response_and_writes_nothing(
        log: CommitLog) -> None:
    stored = {"submitted": True, "orders_per_world": {"w1": [{"symbol": "BTCUSDT"}]}}
    first = await log.append([batch("b1"), batch("b2")], run_id="run-1", body_hash="hash-A",
                             response=stored)
    # A retry builds new batch ids (new uuids); they must not be written.
    second = await log.append([batch("b1-retry"), batch("b2-retry")], run_id="run-1",
                              body_hash="hash-A", response={"submitted": "something else"})

    assert first == AppendResult(batch_ids=["b1", "b2"], replayed=False, response=None)
    assert second == AppendResult(batch_ids=["b1", "b2"], replayed=True, response=stored)
    assert [r.batch_id for r in await log.tail()] == ["b1", "b2"]


async def test_a_repeated_run_id_with_another_body_is_a_conflict(log: CommitLog) -> None:
    await log.append([batch("b1")], run_id="run-1", body_hash="hash-A", response={})

    with pytest.raises(RunIdConflict) as info:
        await log.append([batch("b2")], run_id="run-1", body_hash="hash-B", response={})

    assert info.value.code == "E_RUN_ID_CONFLICT" and info.value.status_code == 409
    assert info.value.context == {"run_id": "run-1"}
    assert [r.batch_id for r in await log.tail()] == ["b1"]


async def test_replay_answers_a_committed_run_without_writing(log: CommitLog) -> None:
    stored = {"submitted": True, "batch": 2}
    assert await log.replay("run-1", body_hash="hash-A") is None
    await log.append([batch("b1"), batch("b2")], run_id="run-1", body_hash="hash-A",
                     response=stored)

    again = await log.replay("run-1", body_hash="hash-A")
    with pytest.raises(RunIdConflict) as info:
        await log.replay("run-1", body_hash="hash-B")

    assert again == AppendResult(batch_ids=["b1", "b2"], replayed=True, response=stored)
    assert info.value.context == {"run_id": "run-1"}
    assert await log.replay("run-2", body_hash="hash-A") is None
    assert [r.batch_id for r in await log.tail()] == ["b1", "b2"]


async def test_without_run_id_every_append_is_written(log: CommitLog) -> None:
    for i in range(3):
        result = await log.append([batch(f"b{i}")], run_id=None, body_hash="same",
                                  response={})
        assert not result.replayed
    assert len(await log.tail()) == 3


async def test_a_run_with_no_batches_is_still_remembered(log: CommitLog) -> None:
    first = await log.append([], run_id="empty", body_hash="h", response={"orders": []})
    second = await log.append([batch("b1")], run_id="empty", body_hash="h", response={})

    assert first == AppendResult(batch_ids=[], replayed=False, response=None)
    assert second == AppendResult(batch_ids=[], replayed=True, response={"orders": []})
    assert await log.tail() == []


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), {1, 2}, object()],
                         ids=["nan", "inf", "set", "object"])
async def test_an_unencodable_record_writes_nothing(log: CommitLog, bad_value: object) -> None:
    records = [batch("ok-1"), batch("bad", reduce_only_ratio=bad_value), batch("ok-2")]

    with pytest.raises(ValueError, match=r"records\[1\] \(batch_id 'bad'\)"):
        await log.append(records, run_id="run-1", body_hash="h", response={})

    assert await log.tail() == []
    # The run was not remembered either: the corrected retry is a fresh append.
    retry = await log.append([batch("ok-1")], run_id="run-1", body_hash="h", response={})
    assert not retry.replayed


async def test_an_unencodable_response_writes_nothing(log: CommitLog) -> None:
    with pytest.raises(ValueError, match="response"):
        await log.append([batch("b1")], run_id="r", body_hash="h",
                         response={"x": float("nan")})
    assert await log.tail() == []


async def test_a_batch_id_already_in_the_log_rejects_the_whole_append(log: CommitLog) -> None:
    await log.append([batch("b1")], run_id=None, body_hash="h", response={})

    with pytest.raises(ValueError, match="'b1' is already in the commit log"):
        await log.append([batch("b2"), batch("b1")], run_id="r2", body_hash="h",
                         response={})
    with pytest.raises(ValueError, match="repeated"):
        await log.append([batch("b3"), batch("b3")], run_id=None, body_hash="h",
                         response={})

    assert [r.batch_id for r in await log.tail()] == ["b1"]
    assert not (await log.append([], run_id="r2", body_hash="h", response={})).replayed


def test_records_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="topic"):
        CommitRecord("other.topic", 1, "b", {})
    with pytest.raises(ValueError, match="ts_ms"):
        CommitRecord.rebalance(ts_ms=-1, batch_id="b", payload={})
    with pytest.raises(ValueError, match="ts_ms"):
        CommitRecord.rebalance(ts_ms=True, batch_id="b", payload={})
    with pytest.raises(ValueError, match="batch_id"):
        CommitRecord.rebalance(ts_ms=1, batch_id="", payload={})
    with pytest.raises(ValueError, match="payload"):
        CommitRecord.rebalance(ts_ms=1, batch_id="b", payload=[])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4-element"):
        CommitRecord.from_wire(["gateway.rebalance", 1, "b"])


async def test_two_gateways_appending_the_same_run_at_once_write_one_set(
        backend: Backend) -> None:
    gateway_a, gateway_b = backend.make(), backend.make()
    await gateway_a.start()
    await gateway_b.start()

    results = await asyncio.gather(
        gateway_a.append([batch("a1"), batch("a2")], run_id="run-x", body_hash="h",
                         response={"from": "a"}),
        gateway_b.append([batch("b1"), batch("b2")], run_id="run-x", body_hash="h",
                         response={"from": "b"}),
    )

    winner = next(r for r in results if not r.replayed)
    loser = next(r for r in results if r.replayed)
    assert loser.batch_ids == winner.batch_ids
    assert loser.response == {"from": winner.batch_ids[0][0]}
    assert [r.batch_id for r in await gateway_a.tail()] == winner.batch_ids


async def test_two_gateways_racing_with_different_bodies_one_conflicts(
        backend: Backend) -> None:
    gateway_a, gateway_b = backend.make(), backend.make()
    await gateway_a.start()
    await gateway_b.start()

    results = await asyncio.gather(
        gateway_a.append([batch("a1")], run_id="run-x", body_hash="A", response={}),
        gateway_b.append([batch("b1")], run_id="run-x", body_hash="B", response={}),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["AppendResult", "RunIdConflict"]
    assert len(await gateway_a.tail()) == 1


async def test_concurrent_appends_never_interleave_their_batches(backend: Backend) -> None:
    gateways = [backend.make(), backend.make()]
    for g in gateways:
        await g.start()

    await asyncio.gather(*(
        gateways[i % 2].append([batch(f"r{i}-{k}") for k in range(4)], run_id=f"r{i}",
                               body_hash="h", response={})
        for i in range(10)
    ))

    ids = [r.batch_id for r in await gateways[0].tail(limit=100)]
    assert len(ids) == 40
    runs = [batch_id.split("-")[0] for batch_id in ids]
    # Each run's four batches are adjacent: an append is one atomic step.
    assert all(len(set(runs[i:i + 4])) == 1 for i in range(0, 40, 4))


async def test_backend_down_is_commit_log_unavailable_and_writes_nothing(
        backend: Backend) -> None:
    log = backend.make(fail_fast=True)
    await log.start()
    await log.append([batch("before")], run_id=None, body_hash="h", response={})

    with backend.outage():
        with pytest.raises(CommitLogUnavailable) as info:
            await log.append([batch("during-1"), batch("during-2")], run_id="r-down",
                             body_hash="h", response={})
        if backend.redis_server is not None:
            # (A locked SQLite file still serves reads in WAL mode: only Redis is down.)
            with pytest.raises(CommitLogUnavailable):
                await log.replay("r-down", body_hash="h")
    assert info.value.code == "E_COMMITLOG_UNAVAILABLE" and info.value.status_code == 503

    assert [r.batch_id for r in await log.tail()] == ["before"]
    retried = await log.append([batch("during-1"), batch("during-2")], run_id="r-down",
                               body_hash="h", response={})
    assert not retried.replayed
    assert [r.batch_id for r in await log.tail()] == ["before", "during-1", "during-2"]


async def test_health_and_close(log: CommitLog) -> None:
    health = await log.health()
    assert health.status == "ok"

    await log.close()
    await log.close()  # idempotent
    with pytest.raises(CommitLogUnavailable, match="closed"):
        await log.append([batch("late")], run_id=None, body_hash="h", response={})
    assert (await log.health()).status == "down"
