"""WorldService test harness: real SQLite files (and real PostgreSQL/Redis where marked),
the app run in-process with its lifespan (``LifespanManager`` + ``ASGITransport``)."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, CloudEvent, decode_event
from qmtl.controlbus import ControlBus, create_controlbus
from qmtl.worldservice.app import create_app
from qmtl.worldservice.config import WorldServiceSettings, normalize_dsn
from qmtl.worldservice.deps import WorldServiceRuntime
from qmtl.worldservice.store.database import Database
from tests._books import TWO_WORLD_BOOK

FAST_RELAY = {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.4}

BASE_BODY: dict[str, Any] = TWO_WORLD_BOOK


def body(**changes: Any) -> dict[str, Any]:
    """A copy of the two-world base request with top-level ``changes`` (None deletes a key)."""
    result = copy.deepcopy(BASE_BODY)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def make_settings(dsn: str, **overrides: Any) -> WorldServiceSettings:
    values: dict[str, Any] = {
        "dsn": dsn,
        "controlbus": f"memory://ws-{uuid.uuid4().hex}",
        "relay": dict(FAST_RELAY),
    }
    values.update(overrides)
    return WorldServiceSettings.model_validate(values)


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: WorldServiceRuntime
    settings: WorldServiceSettings

    async def wait_published(self, *, timeout: float = 20.0) -> None:
        """Wait (bounded) until the outbox has no pending rows."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            health = (await self.client.get("/health")).json()
            if health["outbox"]["pending"] == 0:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"outbox not drained: {health['outbox']}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(settings: WorldServiceSettings, *, controlbus: ControlBus | None = None,
                  headers: dict[str, str] | None = None) -> AsyncIterator[Harness]:
    """The app with its lifespan running and an in-process client."""
    app = create_app(settings, controlbus=controlbus)
    async with LifespanManager(app) as manager:
        runtime = manager._state["worldservice"]  # the lifespan state the routes read
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worldservice",
                                     headers=headers, timeout=60) as client:
            yield Harness(app=app, client=client, runtime=runtime, settings=settings)


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store/worldservice.db"


@pytest.fixture
async def memory_bus() -> AsyncIterator[ControlBus]:
    bus = create_controlbus(f"memory://ws-test-{uuid.uuid4().hex}")
    await bus.start()
    yield bus
    await bus.close()


async def bus_events(bus: ControlBus) -> list[CloudEvent]:
    """Every retained event on the rebalancing topic, oldest first."""
    return [decode_event(m.payload)
            for m in await bus.history(CONTROLBUS_TOPIC_REBALANCING, limit=100_000)]


async def table_counts(dsn: str) -> dict[str, int]:
    """Row counts of the store's tables, read through a separate engine."""
    db = Database.create(normalize_dsn(dsn))
    try:
        async with db.read("test.counts") as conn:
            counts = {}
            for table in ("runs", "audit_log", "outbox", "allocations", "world_seq"):
                counts[table] = int(
                    (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
                )
            return counts
    finally:
        await db.dispose()


async def outbox_rows(dsn: str) -> list[dict[str, Any]]:
    db = Database.create(normalize_dsn(dsn))
    try:
        async with db.read("test.outbox") as conn:
            result = await conn.execute(sa.text(
                "SELECT id, event_id, world_id, seq, run_id, published_at, attempts, last_error "
                "FROM outbox ORDER BY id"))
            return [dict(row._mapping) for row in result]
    finally:
        await db.dispose()


async def outbox_payloads(dsn: str) -> list[str]:
    """The encoded CloudEvents stored in the outbox, in id order."""
    db = Database.create(normalize_dsn(dsn))
    try:
        async with db.read("test.outbox") as conn:
            result = await conn.execute(sa.text("SELECT payload FROM outbox ORDER BY id"))
            return [row[0] for row in result]
    finally:
        await db.dispose()
