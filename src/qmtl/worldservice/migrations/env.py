"""Alembic environment for the WorldService store.

The application runs migrations on a connection it already holds (passed in
``config.attributes["connection"]``); the plain ``alembic`` command line builds an engine
from ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from qmtl.worldservice.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


_connection = config.attributes.get("connection")
if context.is_offline_mode():
    _run_offline(config.get_main_option("sqlalchemy.url") or "")
elif _connection is not None:
    _run(_connection)
else:
    asyncio.run(_run_with_own_engine(config.get_main_option("sqlalchemy.url") or ""))
