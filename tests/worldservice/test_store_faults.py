"""Store failures: 503 ``E_STORE_UNAVAILABLE`` and nothing half-written (real SQLite lock,
real PostgreSQL trigger failure, real PostgreSQL shutdown)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from qmtl.worldservice.config import normalize_dsn
from qmtl.worldservice.store.database import Database
from tests._servers import PostgresServer

from .conftest import body, make_settings, running, table_counts


async def test_sqlite_locked_store_is_503_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ws.db"
    dsn = f"sqlite:///{path}"
    async with running(make_settings(dsn, store_timeout=0.3)) as ws:
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            apply = await ws.client.post("/rebalancing/apply", json=body(run_id="locked"))
            upsert = await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.1}})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert apply.status_code == 503, apply.text
        assert apply.json()["detail"]["code"] == "E_STORE_UNAVAILABLE"
        assert upsert.status_code == 503
        assert await table_counts(dsn) == {"runs": 0, "audit_log": 0, "outbox": 0,
                                           "allocations": 0, "world_seq": 0}
        metrics = (await ws.client.get("/metrics")).text
        assert 'qmtl_worldservice_store_errors_total{operation="apply"} 1.0' in metrics
        # The store is back: the same run_id applies normally.
        retry = await ws.client.post("/rebalancing/apply", json=body(run_id="locked"))
        assert retry.status_code == 200
        assert "idempotent-replayed" not in retry.headers


@pytest.mark.postgres
async def test_failure_inside_the_transaction_rolls_everything_back(postgres_dsn: str) -> None:
    async with running(make_settings(postgres_dsn)) as ws:
        await ws.client.post("/allocations", json={"world_alloc": {"w1": 0.3, "w2": 0.2}})
        state_before = (await ws.client.get("/allocations")).json()
        saboteur = Database.create(postgres_dsn)
        try:
            async with saboteur.write("test") as conn:
                await conn.execute(sa.text(
                    "CREATE FUNCTION fail_outbox() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'simulated disk failure'; END $$ LANGUAGE plpgsql"))
                await conn.execute(sa.text(
                    "CREATE TRIGGER outbox_fails BEFORE INSERT ON outbox "
                    "FOR EACH ROW EXECUTE FUNCTION fail_outbox()"))
            response = await ws.client.post("/rebalancing/apply", json=body(run_id="half"))
            assert response.status_code == 503, response.text
            assert response.json()["detail"]["code"] == "E_STORE_UNAVAILABLE"
            # The run record, audit entries and seq increments came before the failing
            # outbox insert: all of them were rolled back.
            counts = await table_counts(postgres_dsn)
            assert (counts["runs"], counts["audit_log"], counts["outbox"],
                    counts["world_seq"]) == (0, 0, 0, 0)
            assert (await ws.client.get("/allocations")).json() == state_before
            assert (await ws.client.get("/rebalancing/runs/half")).status_code == 404
            async with saboteur.write("test") as conn:
                await conn.execute(sa.text("DROP TRIGGER outbox_fails ON outbox"))
        finally:
            await saboteur.dispose()
        response = await ws.client.post("/rebalancing/apply", json=body(run_id="half"))
        assert response.status_code == 200
        assert (await table_counts(postgres_dsn))["outbox"] == 2


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this test only: it is stopped and restarted."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.postgres
async def test_postgres_down_is_503_and_degraded_then_recovers(
        own_postgres: PostgresServer) -> None:
    dsn = own_postgres.create_database()
    async with running(make_settings(dsn, store_timeout=2.0)) as ws:
        assert (await ws.client.post("/rebalancing/apply", json=body(run_id="up"))).status_code \
            == 200
        own_postgres.stop()
        apply = await ws.client.post("/rebalancing/apply", json=body(run_id="down"))
        plan = await ws.client.post("/rebalancing/plan", json=body(world_alloc_before=None))
        read = await ws.client.get("/allocations")
        health = (await ws.client.get("/health")).json()
        assert apply.status_code == plan.status_code == read.status_code == 503
        assert apply.json()["detail"]["code"] == "E_STORE_UNAVAILABLE"
        assert health["status"] == "degraded"
        assert health["store"]["status"] == "down"
        # A plan with its own "before" needs no store at all.
        assert (await ws.client.post("/rebalancing/plan", json=body())).status_code == 200
        own_postgres.start()
        again = await ws.client.post("/rebalancing/apply", json=body(run_id="down"))
        assert again.status_code == 200, again.text
        await ws.wait_published()
        assert (await ws.client.get("/health")).json()["status"] == "ok"
    counts = await table_counts(normalize_dsn(dsn))
    assert (counts["runs"], counts["outbox"]) == (2, 4)
