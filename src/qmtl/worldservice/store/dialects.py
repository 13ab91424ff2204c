"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["insert_for"]


def insert_for(dialect: str, table: sa.Table) -> Any:
    """An ``INSERT`` that supports ``on_conflict_do_update/do_nothing`` on ``dialect``.

    Both SQLite (>= 3.24, RETURNING >= 3.35) and PostgreSQL have ``ON CONFLICT``; the
    statement classes differ only by import.
    """
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect!r}")
