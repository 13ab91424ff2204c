"""Apply: one transaction (run record, audit, seq, outbox, allocation state), idempotent
replay, 409 on a reused run_id, If-Match, reads of runs and audit."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from qmtl.contracts import (
    ApplyResponse,
    ApplyResponseV1,
    decode_event,
)
from qmtl.worldservice.store import runs as run_store

from .conftest import body, make_settings, outbox_payloads, outbox_rows, running, table_counts


async def test_apply_records_everything_in_one_go(sqlite_dsn: str) -> None:
    request = body(run_id="run-1", schema_version=2,
                   rebalance_intent={"meta": {"ticket": "DESK-7"}})
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        planned = (await ws.client.post("/rebalancing/plan", json=request)).json()
        response = await ws.client.post("/rebalancing/apply", json=request)
        assert response.status_code == 200, response.text
        applied = response.json()
        stored = await ws.client.get("/rebalancing/runs/run-1")
        allocations = await ws.client.get("/allocations")
        await ws.wait_published()
    ApplyResponse.model_validate(applied)
    assert applied["run_id"] == "run-1"
    assert {k: v for k, v in applied.items() if k not in ("run_id", "etag")} == planned
    assert response.headers["etag"] == f'"{applied["etag"]}"'
    assert "idempotent-replayed" not in response.headers
    # The run record is the full served response, byte for byte.
    assert stored.status_code == 200
    assert stored.content == response.content
    # One audit entry and one outbox row per world; allocations moved to the after map.
    counts = await table_counts(sqlite_dsn)
    assert counts == {"runs": 1, "audit_log": 2, "outbox": 2, "allocations": 2, "world_seq": 2}
    state = allocations.json()
    assert {w: a["ratio"] for w, a in state["worlds"].items()} == {"w1": 0.2, "w2": 0.3}
    assert state["etag"] == applied["etag"]
    rows = await outbox_rows(sqlite_dsn)
    assert [(r["world_id"], r["seq"], r["run_id"]) for r in rows] == [
        ("w1", 1, "run-1"), ("w2", 1, "run-1")]
    assert all(r["published_at"] is not None for r in rows)


async def test_replay_returns_the_stored_response(sqlite_dsn: str) -> None:
    request = body(run_id="run-r", schema_version=2)
    reordered = json.loads(json.dumps(request))
    reordered = {k: reordered[k] for k in reversed(list(reordered))}
    reordered["world_alloc_after"] = {"w2": 0.3, "w1": 0.2}
    reordered["unknown_extra"] = "ignored by the tolerant reader"
    settings = make_settings(sqlite_dsn, compat_rebalance_v2=True)
    async with running(settings) as ws:
        first = await ws.client.post("/rebalancing/apply", json=request)
        again = await ws.client.post("/rebalancing/apply", json=request)
        same_meaning = await ws.client.post("/rebalancing/apply", json=reordered)
    assert first.status_code == again.status_code == same_meaning.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert same_meaning.headers["idempotent-replayed"] == "true"
    assert again.content == first.content == same_meaning.content
    assert again.headers["etag"] == first.headers["etag"]
    counts = await table_counts(sqlite_dsn)
    assert (counts["runs"], counts["outbox"], counts["audit_log"]) == (1, 2, 2)


async def test_reused_run_id_with_another_body_is_409(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post("/rebalancing/apply", json=body(run_id="run-c"))
        other = await ws.client.post(
            "/rebalancing/apply",
            json=body(run_id="run-c", world_alloc_after={"w1": 0.1, "w2": 0.3}),
        )
    assert first.status_code == 200
    assert other.status_code == 409
    detail = other.json()["detail"]
    assert detail["code"] == "E_RUN_ID_CONFLICT"
    assert detail["run_id"] == "run-c"
    assert (await table_counts(sqlite_dsn))["outbox"] == 2


async def test_run_id_is_generated_when_absent(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        one = (await ws.client.post("/rebalancing/apply", json=body())).json()
        two = (await ws.client.post("/rebalancing/apply", json=body())).json()
    ApplyResponseV1.model_validate(one)
    assert uuid.UUID(one["run_id"]).version == 4
    assert one["run_id"] != two["run_id"]
    assert (await table_counts(sqlite_dsn))["runs"] == 2


async def test_if_match(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post("/rebalancing/apply", json=body(),
                                     headers={"If-Match": "*"})
        etag = first.json()["etag"]
        stale = await ws.client.post("/rebalancing/apply", json=body(),
                                     headers={"If-Match": '"0000"'})
        fresh = await ws.client.post("/rebalancing/apply", json=body(),
                                     headers={"If-Match": f'"{etag}"'})
    assert first.status_code == 200
    assert stale.status_code == 412
    assert stale.json()["detail"]["code"] == "E_ETAG_MISMATCH"
    assert stale.json()["detail"]["etag"] == etag
    # A plan that leaves the state as it was keeps the content etag.
    assert fresh.status_code == 200, fresh.text
    assert (await table_counts(sqlite_dsn))["runs"] == 2


async def test_null_before_is_filled_from_stored_allocations(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        stored = await ws.client.post(
            "/allocations",
            json={"world_alloc": {"w1": 0.3, "w2": 0.2},
                  "strategy_alloc_total": {"w1": {"s1": 0.12, "s2": 0.18}}},
        )
        assert stored.status_code == 200, stored.text
        explicit = (await ws.client.post("/rebalancing/plan", json=body())).json()
        implicit = (await ws.client.post("/rebalancing/plan",
                                         json=body(world_alloc_before=None))).json()
        applied = await ws.client.post("/rebalancing/apply", json=body(world_alloc_before=None))
        state = (await ws.client.get("/allocations")).json()
    # w1: before 0.3 -> after 0.2 gives scale 2/3 either way; the stored strategy ratios
    # (0.12 + 0.18 = 0.3) scale the same, so the plans agree.
    assert implicit["per_world"]["w1"]["scale_world"] == pytest.approx(2 / 3)
    assert implicit == explicit
    assert applied.status_code == 200
    # After the apply: ratios from the after map; strategy ratios scaled by 2/3.
    assert state["worlds"]["w1"]["ratio"] == 0.2
    assert state["worlds"]["w1"]["strategy_alloc_total"] == pytest.approx(
        {"s1": 0.08, "s2": 0.12})
    assert state["worlds"]["w2"]["strategy_alloc_total"] is None


async def test_empty_store_before_means_new_worlds(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        plan = (await ws.client.post("/rebalancing/plan",
                                     json=body(world_alloc_before=None))).json()
    # B = 0 and A > 0 -> scale 1: nothing moves.
    assert plan["per_world"]["w1"]["scale_world"] == 1.0
    assert plan["global_deltas"] == []


async def test_apply_refuses_a_state_summing_over_one(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        await ws.client.post("/allocations", json={"world_alloc": {"w9": 0.6}})
        # Explicit before without w9: w9 keeps 0.6, and 0.2 + 0.3 + 0.6 > 1.
        response = await ws.client.post("/rebalancing/apply", json=body(run_id="too-much"))
        missing = await ws.client.get("/rebalancing/runs/too-much")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "world_alloc_after"]
    assert missing.status_code == 404
    counts = await table_counts(sqlite_dsn)
    assert (counts["runs"], counts["outbox"], counts["audit_log"]) == (0, 0, 0)


async def test_overlay_apply_writes_one_event_per_world(sqlite_dsn: str) -> None:
    overlay = {"instrument_by_world": {"w1": "ES", "w2": "NQ"},
               "price_by_symbol": {"ES": 5000.0, "NQ": 20000.0}}
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/apply",
                                        json=body(mode="overlay", overlay=overlay))
        await ws.wait_published()
    applied = response.json()
    assert response.status_code == 200, response.text
    assert {d["world_id"] for d in applied["overlay_deltas"]} == {"w1", "w2"}
    rows = await outbox_rows(sqlite_dsn)
    assert sorted(r["world_id"] for r in rows) == ["w1", "w2"]


async def test_reads_404(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        run = await ws.client.get("/rebalancing/runs/nope")
        audit = await ws.client.get("/worlds/nope/audit")
        await ws.client.post("/rebalancing/apply", json=body())
        known = await ws.client.get("/worlds/w2/audit")
    assert run.status_code == 404 and run.json()["detail"]["code"] == "E_NOT_FOUND"
    assert audit.status_code == 404 and audit.json()["detail"]["world_id"] == "nope"
    assert known.status_code == 200


async def test_audit_lists_entries_newest_first(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        run_ids = []
        for i in range(3):
            response = await ws.client.post("/rebalancing/apply", json=body(run_id=f"a{i}"))
            run_ids.append(response.json()["run_id"])
        audit = (await ws.client.get("/worlds/w1/audit")).json()
        limited = (await ws.client.get("/worlds/w1/audit", params={"limit": 1})).json()
        bad_limit = await ws.client.get("/worlds/w1/audit", params={"limit": 0})
    entries = audit["entries"]
    assert [e["seq"] for e in entries] == [3, 2, 1]
    assert [e["run_id"] for e in entries] == list(reversed(run_ids))
    first = entries[-1]
    # w1: 0.3 -> 0.2, scale 2/3, one BTCUSDT delta.
    assert (first["ratio_before"], first["ratio_after"], first["delta_count"]) == (0.3, 0.2, 1)
    assert first["action"] == "apply" and first["mode"] == "scaling"
    assert [e["seq"] for e in limited["entries"]] == [3]
    assert bad_limit.status_code == 422


async def test_event_payloads_in_the_outbox_are_cloudevents(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn, compat_rebalance_v2=True)) as ws:
        await ws.client.post("/rebalancing/apply", json=body(schema_version=2, run_id="ce"))
    db_rows = await outbox_rows(sqlite_dsn)
    events = [decode_event(p) for p in await outbox_payloads(sqlite_dsn)]
    assert [e.id for e in events] == [r["event_id"] for r in db_rows]
    assert all(e.type == "rebalancing_planned" and e.source == "qmtl.worldservice"
               for e in events)


@pytest.mark.parametrize(("changes", "status"), [({}, 200), ({"total_equity": 5.0}, 409)])
async def test_unique_key_race_is_answered_by_reading_back(
        sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any],
        status: int) -> None:
    """Unit test with fault injection: every run lookup before the insert is patched to
    miss, as if another replica committed the same run_id in between; the unique key then
    fails the insert and the winner is read back."""
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post("/rebalancing/apply", json=body(run_id="dup"))
        real_get_run = run_store.get_run
        real_insert_run = run_store.insert_run
        inserts: list[str] = []

        async def get_run_blind_before_insert(conn: Any, run_id: str) -> Any:
            return await real_get_run(conn, run_id) if inserts else None

        async def insert_run_recorded(conn: Any, run: Any, **kwargs: Any) -> None:
            inserts.append(run.run_id)
            await real_insert_run(conn, run, **kwargs)

        monkeypatch.setattr(run_store, "get_run", get_run_blind_before_insert)
        monkeypatch.setattr(run_store, "insert_run", insert_run_recorded)
        second = await ws.client.post("/rebalancing/apply", json=body(run_id="dup", **changes))
    assert inserts == ["dup"]  # the insert was attempted and refused by the unique key
    assert second.status_code == status, second.text
    if status == 200:
        assert second.headers["idempotent-replayed"] == "true"
        assert second.content == first.content
    else:
        assert second.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
    counts = await table_counts(sqlite_dsn)
    assert (counts["runs"], counts["outbox"], counts["audit_log"]) == (1, 2, 2)
