"""Apply the Alembic migrations shipped in ``qmtl.worldservice.migrations``."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .database import Database, redact_dsn

__all__ = ["MIGRATIONS_LOCATION", "alembic_config", "current_revision", "head_revision",
           "upgrade"]

logger = logging.getLogger(__name__)

MIGRATIONS_LOCATION = "qmtl.worldservice:migrations"
_MIGRATION_LOCK_KEY = 0x716D746C_0002  # PostgreSQL advisory lock: one migrator at a time


def alembic_config(dsn: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    if dsn is not None:
        config.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade_on(connection: sa.Connection, revision: str) -> str | None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together must not race to create the same tables.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database, *, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision`` in one transaction; returns the new revision.

    Raises:
        qmtl.contracts.errors.StoreUnavailable: the database is unreachable.
    """
    async with db.write("migrate") as conn:
        current = await conn.run_sync(_upgrade_on, revision)
    logger.info("store %s at revision %s", redact_dsn(str(db.engine.url)), current,
                extra={"revision": current})
    return current


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.read("revision") as conn:
        return await conn.run_sync(_current)
