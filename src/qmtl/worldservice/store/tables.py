"""Table definitions (SQLAlchemy Core). The Alembic migrations in ``migrations/versions``
create exactly these tables; a test compares them.

Tables:
    runs               one row per applied plan: the full served response, keyed by run_id
    audit_log          one row per world of an applied plan
    world_seq          the last event ``seq`` handed out per world (row-locked increment)
    outbox             one fully encoded CloudEvent per world of an applied plan
    allocations        the stored allocation state (the next plan's "before")
    allocation_meta    a single row (id = 1) that writers lock; holds the state's etag
    allocation_runs    run_id idempotency for ``POST /allocations``
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "UtcDateTime",
    "allocation_meta",
    "allocation_runs",
    "allocations",
    "audit_log",
    "metadata",
    "outbox",
    "runs",
    "world_seq",
]

# Stable constraint names so that migrations and metadata agree on every backend.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and read back with ``tzinfo=UTC`` (string comparison then orders them correctly).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("world_count", sa.Integer, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("world_id", sa.String(), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.String(), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("ratio_before", sa.Float, nullable=True),
    sa.Column("ratio_after", sa.Float, nullable=True),
    sa.Column("scale_world", sa.Float, nullable=False),
    sa.Column("delta_count", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("world_id", "seq"),
)

world_seq = sa.Table(
    "world_seq",
    metadata,
    sa.Column("world_id", sa.String(), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("world_id", sa.String(), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.String(), nullable=False),
    sa.Column("topic", sa.String(), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("published_at", UtcDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("world_id", "seq"),
)
sa.Index("ix_outbox_published_at_id", outbox.c.published_at, outbox.c.id)

allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("world_id", sa.String(), primary_key=True),
    sa.Column("ratio", sa.Float, nullable=False),
    sa.Column("strategy_alloc_total", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

allocation_meta = sa.Table(
    "allocation_meta",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

allocation_runs = sa.Table(
    "allocation_runs",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
