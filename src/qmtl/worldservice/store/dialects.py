"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["BIND_PARAM_LIMIT", "chunks", "insert_for"]

T = TypeVar("T")

BIND_PARAM_LIMIT = {
    # asyncpg sends the count as a 16-bit integer: 32,767 parameters per statement.
    "postgresql": 32_767,
    # SQLITE_MAX_VARIABLE_NUMBER: 32,766 since SQLite 3.32, 999 before.
    "sqlite": 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999,
}
"""Bind parameters one statement may carry, per dialect."""

_RESERVED_PARAMS = 16


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


def chunks(rows: Sequence[T], *, dialect: str, params_per_row: int) -> Iterator[Sequence[T]]:
    """``rows`` in slices small enough for one multi-row statement each.

    A multi-row ``VALUES`` (or an ``IN`` list) binds ``params_per_row`` parameters per row;
    thousands of worlds in one apply would exceed the driver's limit (a 503 every time).
    The caller runs the slices in one transaction, so the write stays atomic.
    """
    # A few parameters are left for the rest of the statement (SET values, WHERE).
    size = max(1, (BIND_PARAM_LIMIT.get(dialect, 999) - _RESERVED_PARAMS) // params_per_row)
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
