"""Allocation state rows: read, lock, merge-write, and the content etag.

Every writer (``POST /allocations`` and apply) first calls :func:`lock_state`, which takes
the row lock on the single ``allocation_meta`` row on PostgreSQL (``SELECT … FOR UPDATE``);
SQLite write transactions are already serialised by ``BEGIN IMMEDIATE``. Reading the
state, checking ``If-Match`` and writing the new state therefore happen without a race.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from qmtl.contracts import AllocationState, WorldAllocation, sha256_hex

from .dialects import chunks, insert_for
from .tables import allocation_meta, allocation_runs, allocations

__all__ = [
    "StoredAllocation",
    "get_allocation_run",
    "insert_allocation_run",
    "lock_state",
    "read_state",
    "state_etag",
    "to_contract",
    "write_state",
]

_META_ID = 1


@dataclass(frozen=True, slots=True)
class StoredAllocation:
    """One world's stored allocation: ratio of total equity, optional strategy ratios."""

    world_id: str
    ratio: float
    strategy_alloc_total: dict[str, float] | None
    run_id: str | None
    updated_at: datetime


def state_etag(state: Mapping[str, StoredAllocation]) -> str:
    """The etag of an allocation state: the first 32 hex digits of the SHA-256 of its content.

    Content = ``{world_id: {"ratio": r, "strategy_alloc_total": {...} | null}}``, canonical JSON;
    timestamps and run ids are not part of it, so equal states have equal etags.
    """
    content = {
        w: {"ratio": a.ratio, "strategy_alloc_total": a.strategy_alloc_total}
        for w, a in state.items()
    }
    return sha256_hex(content)[:32]


async def lock_state(conn: AsyncConnection, *, dialect: str, now: datetime) -> None:
    """Hold the allocation-state write lock until commit.

    PostgreSQL: create the ``allocation_meta`` row if needed and lock it. SQLite: nothing to
    do — the transaction began with ``BEGIN IMMEDIATE`` and already excludes other writers.
    """
    if dialect == "sqlite":
        return
    stmt = insert_for(dialect, allocation_meta).values(
        id=_META_ID, etag=state_etag({}), run_id=None, updated_at=now
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))
    await conn.execute(
        sa.select(allocation_meta.c.id).where(allocation_meta.c.id == _META_ID).with_for_update()
    )


async def read_state(conn: AsyncConnection) -> dict[str, StoredAllocation]:
    """The whole allocation state, ordered by world id."""
    result = await conn.execute(sa.select(allocations).order_by(allocations.c.world_id))
    return {
        row.world_id: StoredAllocation(
            world_id=row.world_id,
            ratio=float(row.ratio),
            strategy_alloc_total=(
                json.loads(row.strategy_alloc_total) if row.strategy_alloc_total else None
            ),
            run_id=row.run_id,
            updated_at=row.updated_at,
        )
        for row in result
    }


async def write_state(conn: AsyncConnection, *, dialect: str,
                      changed: Mapping[str, StoredAllocation], etag: str,
                      run_id: str | None, now: datetime) -> None:
    """Upsert the ``changed`` worlds and record the new etag (caller holds the lock).

    A multi-row upsert of the worlds (sorted, so concurrent writers lock rows in the same
    order; one statement per slice of :func:`~.dialects.chunks` when there are thousands)
    and an upsert of the meta row.
    """
    if changed:
        rows = [
            {
                "world_id": world_id,
                "ratio": changed[world_id].ratio,
                "strategy_alloc_total": (
                    json.dumps(changed[world_id].strategy_alloc_total, sort_keys=True)
                    if changed[world_id].strategy_alloc_total is not None else None
                ),
                "run_id": changed[world_id].run_id,
                "updated_at": changed[world_id].updated_at,
            }
            for world_id in sorted(changed)
        ]
        stmt = insert_for(dialect, allocations)
        upsert = stmt.on_conflict_do_update(
            index_elements=["world_id"],
            set_={name: stmt.excluded[name]
                  for name in ("ratio", "strategy_alloc_total", "run_id", "updated_at")},
        )
        for part in chunks(rows, dialect=dialect, params_per_row=len(rows[0])):
            await conn.execute(upsert, list(part))
    meta = insert_for(dialect, allocation_meta).values(id=_META_ID, etag=etag, run_id=run_id,
                                                       updated_at=now)
    await conn.execute(meta.on_conflict_do_update(
        index_elements=["id"], set_={"etag": etag, "run_id": run_id, "updated_at": now},
    ))


def to_contract(state: Mapping[str, StoredAllocation], *, etag: str,
                run_id: str | None = None) -> AllocationState:
    return AllocationState(
        worlds={
            w: WorldAllocation(
                world_id=w,
                ratio=a.ratio,
                strategy_alloc_total=a.strategy_alloc_total,
                updated_at=a.updated_at,
            )
            for w, a in state.items()
        },
        etag=etag,
        run_id=run_id,
    )


@dataclass(frozen=True, slots=True)
class StoredAllocationRun:
    run_id: str
    request_hash: str
    response: str


async def get_allocation_run(conn: AsyncConnection, run_id: str) -> StoredAllocationRun | None:
    row = (
        await conn.execute(sa.select(allocation_runs).where(allocation_runs.c.run_id == run_id))
    ).first()
    if row is None:
        return None
    return StoredAllocationRun(run_id=row.run_id, request_hash=row.request_hash,
                               response=row.response)


async def insert_allocation_run(conn: AsyncConnection, *, run_id: str, request_hash: str,
                                response: str, now: datetime) -> None:
    await conn.execute(
        sa.insert(allocation_runs).values(
            run_id=run_id, request_hash=request_hash, response=response, created_at=now
        )
    )
