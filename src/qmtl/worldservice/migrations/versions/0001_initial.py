"""initial WorldService store: runs, audit, per-world seq, outbox, allocations

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("world_count", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", _Ts, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("world_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("ratio_before", sa.Float(), nullable=True),
        sa.Column("ratio_after", sa.Float(), nullable=True),
        sa.Column("scale_world", sa.Float(), nullable=False),
        sa.Column("delta_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.UniqueConstraint("world_id", "seq", name="uq_audit_log_world_id_seq"),
    )
    op.create_table(
        "world_seq",
        sa.Column("world_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("world_id", name="pk_world_seq"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("world_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", _Ts, nullable=False),
        sa.Column("published_at", _Ts, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _Ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sa.UniqueConstraint("world_id", "seq", name="uq_outbox_world_id_seq"),
    )
    op.create_index("ix_outbox_published_at_id", "outbox", ["published_at", "id"])
    op.create_table(
        "allocations",
        sa.Column("world_id", sa.String(), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("strategy_alloc_total", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("updated_at", _Ts, nullable=False),
        sa.PrimaryKeyConstraint("world_id", name="pk_allocations"),
    )
    op.create_table(
        "allocation_meta",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("updated_at", _Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_allocation_meta"),
    )
    op.create_table(
        "allocation_runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", _Ts, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_allocation_runs"),
    )


def downgrade() -> None:
    for table in ("allocation_runs", "allocation_meta", "allocations", "outbox", "world_seq",
                  "audit_log", "runs"):
        op.drop_table(table)
