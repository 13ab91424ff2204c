"""``POST /allocations`` (merge, sum <= 1, If-Match, run_id replay) and ``GET /allocations``."""

from __future__ import annotations

import pytest

from qmtl.contracts import AllocationState

from .conftest import make_settings, running


async def test_empty_state_has_an_etag(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.get("/allocations")
    state = AllocationState.model_validate(response.json())
    assert state.worlds == {}
    assert response.headers["etag"] == f'"{state.etag}"'


async def test_upsert_merges_worlds(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post(
            "/allocations",
            json={"world_alloc": {"w1": 0.3, "w2": 0.2},
                  "strategy_alloc_total": {"w1": {"s1": 0.1, "s2": 0.2}}})
        second = await ws.client.post("/allocations", json={"world_alloc": {"w2": 0.4}})
        third = await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.35}})
        read = await ws.client.get("/allocations")
        one = await ws.client.get("/allocations", params={"world_id": "w1"})
    assert first.status_code == second.status_code == third.status_code == 200
    state = read.json()
    assert {w: a["ratio"] for w, a in state["worlds"].items()} == {"w1": 0.35, "w2": 0.4}
    # w1's strategy ratios were not named in the third call, so they are kept.
    assert state["worlds"]["w1"]["strategy_alloc_total"] == {"s1": 0.1, "s2": 0.2}
    assert third.json() == {**state, "run_id": None}
    assert third.headers["etag"] == read.headers["etag"] == f'"{state["etag"]}"'
    assert list(one.json()["worlds"]) == ["w1"]
    assert one.json()["etag"] == state["etag"]  # the etag always covers the whole state


async def test_resulting_sum_over_one_is_422_and_nothing_changes(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.6}})
        before = (await ws.client.get("/allocations")).json()
        response = await ws.client.post("/allocations", json={"world_alloc": {"w2": 0.5}})
        after = (await ws.client.get("/allocations")).json()
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "world_alloc"]
    assert after == before


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"world_alloc": {"w1": 1.2}}, ["body", "world_alloc", "w1"]),
        ({"world_alloc": {"w1": 0.7, "w2": 0.7}}, ["body", "world_alloc"]),
        ({"world_alloc": {"": 0.1}}, ["body", "world_alloc", "", "[key]"]),
        ({"world_alloc": {"w1": "0.1"}}, ["body", "world_alloc", "w1"]),
        ({}, ["body", "world_alloc"]),
        ({"world_alloc": {"w1": 0.1}, "strategy_alloc_total": {"w9": {"s": 0.1}}},
         ["body", "strategy_alloc_total", "w9"]),
        ({"world_alloc": {"w1": 0.1}, "strategy_alloc_total": {"w1": {"s": -0.1}}},
         ["body", "strategy_alloc_total", "w1", "s"]),
    ],
)
async def test_bad_upserts_name_the_field(sqlite_dsn: str, payload: dict[str, object],
                                          loc: list[str]) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/allocations", json=payload)
    assert response.status_code == 422, response.text
    assert loc in [err["loc"] for err in response.json()["detail"]]


async def test_if_match(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        etag = (await ws.client.get("/allocations")).headers["etag"]
        ok = await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.1}},
                                  headers={"If-Match": etag})
        stale = await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.2}},
                                     headers={"If-Match": etag})
        weak = await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.3}},
                                    headers={"If-Match": "W/" + ok.headers["etag"]})
        state = (await ws.client.get("/allocations")).json()
    assert ok.status_code == 200
    assert stale.status_code == 412
    assert stale.json()["detail"]["code"] == "E_ETAG_MISMATCH"
    assert weak.status_code == 200
    assert state["worlds"]["w1"]["ratio"] == 0.3


async def test_run_id_replay_and_conflict(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        first = await ws.client.post("/allocations",
                                     json={"run_id": "alloc-1", "world_alloc": {"w1": 0.1}})
        await ws.client.post("/allocations", json={"world_alloc": {"w2": 0.2}})
        replay = await ws.client.post("/allocations",
                                      json={"world_alloc": {"w1": 0.1}, "run_id": "alloc-1"})
        conflict = await ws.client.post("/allocations",
                                        json={"run_id": "alloc-1", "world_alloc": {"w1": 0.5}})
        state = (await ws.client.get("/allocations")).json()
    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert replay.headers["etag"] == first.headers["etag"]
    assert conflict.status_code == 409
    assert conflict.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
    assert {w: a["ratio"] for w, a in state["worlds"].items()} == {"w1": 0.1, "w2": 0.2}


async def test_unknown_world_is_404(sqlite_dsn: str) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.get("/allocations", params={"world_id": "ghost"})
    assert response.status_code == 404
    assert response.json()["detail"] == {
        "code": "E_NOT_FOUND", "message": "world 'ghost' has no stored allocation",
        "world_id": "ghost"}
