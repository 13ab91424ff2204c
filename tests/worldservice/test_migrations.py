"""Alembic: ``upgrade head`` on an empty database gives exactly the metadata's tables."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qmtl.worldservice.config import normalize_dsn
from qmtl.worldservice.store.database import Database
from qmtl.worldservice.store.migrate import current_revision, head_revision, upgrade
from qmtl.worldservice.store.tables import metadata


def _diff(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                           "compare_server_default": True})
    return list(compare_metadata(context, metadata))


def _inspect(connection: sa.Connection) -> dict[str, Any]:
    inspector = sa.inspect(connection)
    return {
        table: {
            "columns": sorted(c["name"] for c in inspector.get_columns(table)),
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted(tuple(u["column_names"]) for u in
                             inspector.get_unique_constraints(table)),
            "indexes": sorted(tuple(i["column_names"]) for i in inspector.get_indexes(table)
                              if not i.get("unique")),
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


async def _check(dsn: str) -> None:
    migrated = Database.create(dsn)
    try:
        assert await upgrade(migrated) == head_revision()
        assert await upgrade(migrated) == head_revision()  # idempotent
        assert await current_revision(migrated) == head_revision()
        async with migrated.read("test") as conn:
            assert await conn.run_sync(_diff) == []
            from_migrations = await conn.run_sync(_inspect)
    finally:
        await migrated.dispose()
    assert set(from_migrations) == set(metadata.tables)
    for table in metadata.tables.values():
        assert from_migrations[table.name]["columns"] == sorted(c.name for c in table.columns)
        assert from_migrations[table.name]["pk"] == [c.name for c in table.primary_key]


async def test_sqlite_upgrade_matches_metadata(tmp_path: Any) -> None:
    await _check(normalize_dsn(f"sqlite:///{tmp_path}/deep/dir/ws.db"))
    assert (tmp_path / "deep" / "dir" / "ws.db").exists()


@pytest.mark.postgres
async def test_postgres_upgrade_matches_metadata(postgres_dsn: str) -> None:
    await _check(postgres_dsn)


@pytest.mark.postgres
async def test_metadata_create_all_and_migrations_agree_on_postgres(
        postgres_server: Any) -> None:
    # The reverse direction: tables created from the metadata compare equal to themselves
    # and to the migrated schema's structure.
    dsn_a = postgres_server.create_database()
    dsn_b = postgres_server.create_database()
    created = Database.create(dsn_a)
    migrated = Database.create(dsn_b)
    try:
        async with created.write("test") as conn:
            await conn.run_sync(metadata.create_all)
            from_metadata = await conn.run_sync(_inspect)
        await upgrade(migrated)
        async with migrated.read("test") as conn:
            from_migrations = await conn.run_sync(_inspect)
    finally:
        await created.dispose()
        await migrated.dispose()
    assert from_migrations == from_metadata
