"""Applied runs, per-world sequence numbers and the audit trail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from qmtl.contracts import AuditEntry

from .dialects import chunks, insert_for
from .tables import allocations, audit_log, runs, world_seq

__all__ = [
    "AuditRow",
    "StoredRun",
    "get_run",
    "insert_audit",
    "insert_run",
    "list_audit",
    "next_seqs",
    "world_is_known",
]


@dataclass(frozen=True, slots=True)
class StoredRun:
    """An applied plan as stored: the served response (JSON text) and the request hash."""

    run_id: str
    request_hash: str
    schema_version: int
    etag: str
    response: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRow:
    world_id: str
    seq: int
    run_id: str
    event_id: str
    action: str
    schema_version: int
    mode: str
    ratio_before: float | None
    ratio_after: float | None
    scale_world: float
    delta_count: int
    created_at: datetime


async def get_run(conn: AsyncConnection, run_id: str) -> StoredRun | None:
    row = (await conn.execute(sa.select(runs).where(runs.c.run_id == run_id))).first()
    if row is None:
        return None
    return StoredRun(run_id=row.run_id, request_hash=row.request_hash,
                     schema_version=row.schema_version, etag=row.etag, response=row.response,
                     created_at=row.created_at)


async def insert_run(conn: AsyncConnection, run: StoredRun, *, mode: str,
                     world_count: int) -> None:
    """Insert the run record; a concurrent insert of the same run_id raises IntegrityError."""
    await conn.execute(
        sa.insert(runs).values(
            run_id=run.run_id, request_hash=run.request_hash, schema_version=run.schema_version,
            mode=mode, world_count=world_count, etag=run.etag, response=run.response,
            created_at=run.created_at,
        )
    )


async def next_seqs(conn: AsyncConnection, *, dialect: str,
                    world_ids: Iterable[str]) -> dict[str, int]:
    """Increment and return each world's event ``seq`` (1 for a new world).

    Multi-row ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (one per slice of
    :func:`~.dialects.chunks`): it row-locks the counters until commit on PostgreSQL;
    worlds are listed in sorted order so two transactions lock them in the same order and
    cannot deadlock.
    """
    worlds = sorted(set(world_ids))
    if not worlds:
        return {}
    stmt = (
        insert_for(dialect, world_seq)
        .on_conflict_do_update(index_elements=["world_id"], set_={"seq": world_seq.c.seq + 1})
        .returning(world_seq.c.world_id, world_seq.c.seq)
    )
    seqs: dict[str, int] = {}
    # Slices in sorted order keep the lock order; thousands of worlds need several.
    for part in chunks(worlds, dialect=dialect, params_per_row=2):
        rows = await conn.execute(stmt, [{"world_id": w, "seq": 1} for w in part])
        seqs.update((row.world_id, int(row.seq)) for row in rows)
    if set(seqs) != set(worlds):
        raise RuntimeError(f"seq upsert returned {sorted(seqs)} for {worlds}")
    return seqs


async def insert_audit(conn: AsyncConnection, rows: Sequence[AuditRow]) -> None:
    if not rows:
        return
    await conn.execute(
        sa.insert(audit_log),
        [
            {
                "world_id": r.world_id, "seq": r.seq, "run_id": r.run_id,
                "event_id": r.event_id, "action": r.action,
                "schema_version": r.schema_version, "mode": r.mode,
                "ratio_before": r.ratio_before, "ratio_after": r.ratio_after,
                "scale_world": r.scale_world, "delta_count": r.delta_count,
                "created_at": r.created_at,
            }
            for r in rows
        ],
    )


async def list_audit(conn: AsyncConnection, world_id: str, *, limit: int) -> list[AuditEntry]:
    """The newest ``limit`` audit entries of ``world_id``, newest first."""
    result = await conn.execute(
        sa.select(audit_log)
        .where(audit_log.c.world_id == world_id)
        .order_by(audit_log.c.seq.desc())
        .limit(limit)
    )
    return [
        AuditEntry(
            world_id=row.world_id, seq=row.seq, run_id=row.run_id, event_id=row.event_id,
            action=row.action, schema_version=row.schema_version, mode=row.mode,
            ratio_before=row.ratio_before, ratio_after=row.ratio_after,
            scale_world=row.scale_world, delta_count=row.delta_count,
            created_at=row.created_at,
        )
        for row in result
    ]


async def world_is_known(conn: AsyncConnection, world_id: str) -> bool:
    """Whether the store has ever heard of ``world_id`` (an allocation or an applied plan)."""
    in_seq = sa.select(world_seq.c.world_id).where(world_seq.c.world_id == world_id)
    in_alloc = sa.select(allocations.c.world_id).where(allocations.c.world_id == world_id)
    row = (await conn.execute(sa.union_all(in_seq, in_alloc).limit(1))).first()
    return row is not None
