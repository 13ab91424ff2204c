"""The transactional outbox: encoded CloudEvents waiting to be published on the ControlBus.

Rows are written in the apply transaction and read by the relay. Within a world, ``seq``
order equals commit order (the per-world counter is row-locked until commit), and the
outbox ``id`` is allocated after the counter, so ``ORDER BY id`` never puts a world's later
row before an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .dialects import chunks
from .tables import outbox

__all__ = [
    "RELAY_LOCK_KEY",
    "OutboxRow",
    "PendingStats",
    "fetch_pending",
    "insert_events",
    "mark_published",
    "pending_stats",
    "record_failure",
    "try_relay_lease",
]

RELAY_LOCK_KEY = 0x716D746C_0001  # "qmtl" + 1: the PostgreSQL advisory lock of the relay


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One pending event; ``payload`` is the encoded CloudEvent (UTF-8 JSON text)."""

    id: int
    event_id: str
    world_id: str
    seq: int
    run_id: str
    topic: str
    payload: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingStats:
    pending: int
    oldest_created_at: datetime | None


async def insert_events(conn: AsyncConnection, rows: Sequence[OutboxRow]) -> None:
    """Insert new rows (ids are assigned by the database)."""
    if not rows:
        return
    await conn.execute(
        sa.insert(outbox),
        [
            {
                "event_id": r.event_id, "world_id": r.world_id, "seq": r.seq,
                "run_id": r.run_id, "topic": r.topic, "payload": r.payload,
                "created_at": r.created_at, "attempts": 0,
            }
            for r in rows
        ],
    )


async def fetch_pending(conn: AsyncConnection, *, limit: int,
                        now: datetime) -> tuple[list[OutboxRow], datetime | None]:
    """The oldest ``limit`` unpublished rows of the worlds that are not backing off, in id
    order, and the earliest time a backing-off world is due again (``None`` if none is).

    A world backs off while its head row (only a head row ever fails) has
    ``next_attempt_at`` in the future; leaving its rows out of the batch keeps one stuck
    world from filling the batch and holding up the others.
    """
    backing_off = (outbox.c.published_at.is_(None)) & (outbox.c.next_attempt_at > now)
    blocked_worlds = sa.select(outbox.c.world_id).where(backing_off)
    result = await conn.execute(
        sa.select(outbox)
        .where(outbox.c.published_at.is_(None), outbox.c.world_id.not_in(blocked_worlds))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    rows = [
        OutboxRow(id=r.id, event_id=r.event_id, world_id=r.world_id, seq=r.seq, run_id=r.run_id,
                  topic=r.topic, payload=r.payload, created_at=r.created_at,
                  attempts=r.attempts, next_attempt_at=r.next_attempt_at)
        for r in result
    ]
    next_due = (await conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(backing_off)
    )).scalar_one()
    return rows, next_due


async def mark_published(conn: AsyncConnection, ids: Sequence[int], *, now: datetime) -> None:
    # An IN list binds one parameter per id: a large relay batch_size needs several.
    dialect = conn.dialect.name
    for part in chunks(list(ids), dialect=dialect, params_per_row=1):
        await conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(list(part)), outbox.c.published_at.is_(None))
            .values(published_at=now, attempts=outbox.c.attempts + 1, last_error=None,
                    next_attempt_at=None)
        )


async def record_failure(conn: AsyncConnection, row_id: int, *, error: str,
                         next_attempt_at: datetime) -> None:
    await conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == row_id)
        .values(attempts=outbox.c.attempts + 1, last_error=error[:2000],
                next_attempt_at=next_attempt_at)
    )


async def pending_stats(conn: AsyncConnection) -> PendingStats:
    row = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
                outbox.c.published_at.is_(None)
            )
        )
    ).one()
    # min() keeps the column type, so the value comes back as an aware UTC datetime.
    return PendingStats(pending=int(row[0]), oldest_created_at=row[1])


async def try_relay_lease(conn: AsyncConnection) -> bool:
    """PostgreSQL: take the relay lease — the transaction-scoped advisory lock
    ``RELAY_LOCK_KEY`` — without waiting; it is released when ``conn``'s transaction ends."""
    result = await conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY)))
    return bool(result.scalar_one())
