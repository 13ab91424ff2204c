"""Thousands of worlds in one apply (SPEC 6): the bulk writes are split under the driver's
bind-parameter limit (asyncpg: 32,767 per statement; > ~6,550 worlds was a 503 every time)
and stay one transaction — every world gets its run, seq, audit row, outbox event and
allocation, or none does."""

from __future__ import annotations

from typing import Any

import pytest

from qmtl.worldservice.store.dialects import BIND_PARAM_LIMIT, chunks

from .conftest import make_settings, running, table_counts

WORLDS = 10_000


def _many_worlds(count: int, *, ratio: float) -> dict[str, Any]:
    worlds = [f"w{i:05d}" for i in range(count)]
    return {
        "total_equity": 1_000_000.0,
        "world_alloc_before": {w: 0.5 / count for w in worlds},
        "world_alloc_after": {w: ratio / count for w in worlds},
        "positions": [{"world_id": worlds[0], "strategy_id": "s1", "symbol": "BTC",
                       "qty": 1.0, "mark": 100.0}],
    }


def test_chunks_stay_under_the_limit_and_keep_every_row() -> None:
    rows = list(range(40_000))
    parts = list(chunks(rows, dialect="postgresql", params_per_row=5))
    assert [x for part in parts for x in part] == rows
    assert all(len(part) * 5 < BIND_PARAM_LIMIT["postgresql"] for part in parts)
    assert len(parts) == 7  # 40,000 rows x 5 parameters over 32,751 per statement
    assert list(chunks([], dialect="sqlite", params_per_row=3)) == []


@pytest.mark.postgres
async def test_ten_thousand_worlds_apply_on_postgresql(postgres_dsn: str) -> None:
    async with running(make_settings(postgres_dsn)) as ws:
        first = await ws.client.post("/rebalancing/apply", json=_many_worlds(WORLDS, ratio=0.4))
        second = await ws.client.post("/rebalancing/apply",
                                      json=_many_worlds(WORLDS, ratio=0.3)
                                      | {"world_alloc_before": None})
        audit = await ws.client.get("/worlds/w09999/audit")
        state = await ws.client.get("/allocations?world_id=w04321")
    assert first.status_code == 200, first.text[:500]
    assert second.status_code == 200, second.text[:500]
    assert len(first.json()["per_world"]) == WORLDS
    counts = await table_counts(postgres_dsn)
    assert counts == {"runs": 2, "audit_log": 2 * WORLDS, "outbox": 2 * WORLDS,
                      "allocations": WORLDS, "world_seq": WORLDS}
    assert [entry["seq"] for entry in audit.json()["entries"]] == [2, 1]
    assert state.json()["worlds"]["w04321"]["ratio"] == pytest.approx(0.3 / WORLDS)


async def test_seven_thousand_worlds_apply_on_sqlite(sqlite_dsn: str) -> None:
    # 7,000 allocation rows x 5 columns is over SQLite's 32,766 parameters too.
    async with running(make_settings(sqlite_dsn)) as ws:
        response = await ws.client.post("/rebalancing/apply",
                                        json=_many_worlds(7_000, ratio=0.4))
    assert response.status_code == 200, response.text[:500]
    counts = await table_counts(sqlite_dsn)
    assert counts["outbox"] == counts["audit_log"] == counts["allocations"] == 7_000
