"""The async database handle: engine creation, transactions, and the one place where driver
exceptions become :class:`~qmtl.contracts.errors.StoreUnavailable`.

SQLite (aiosqlite) runs in WAL mode with ``synchronous=FULL`` (an acknowledged apply survives
a power cut); SQLAlchemy emits ``BEGIN`` itself so that reads are repeatable and DDL is
transactional, and write transactions use ``BEGIN IMMEDIATE`` so that two writers queue on
the database lock instead of failing to upgrade a read lock. PostgreSQL runs on asyncpg.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from qmtl.contracts.errors import InputNotStorable, StoreUnavailable

__all__ = ["Database", "redact_dsn", "store_errors"]

logger = logging.getLogger(__name__)

_IMMEDIATE = "qmtl_sqlite_immediate"


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (safe to log)."""
    return make_url(dsn).render_as_string(hide_password=True)


@contextmanager
def store_errors(operation: str, *,
                 on_error: Callable[[str], None] | None = None) -> Iterator[None]:
    """Translate driver and connection failures into ``StoreUnavailable`` (HTTP 503), and a
    value the driver refuses (too long, out of range) into ``InputNotStorable`` (422).

    ``IntegrityError`` passes through: callers that expect a unique-key race handle it.
    ``on_error(operation)`` is called for every translated failure (metrics).
    """
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        if not _refused_value(exc):
            _unavailable(operation, exc, on_error)
        logger.warning("store operation %s refused a value: %s", operation, exc.orig,
                       extra={"operation": operation})
        raise InputNotStorable(
            f"the store refused a value of the request ({operation}): "
            f"{type(exc.orig).__name__}; nothing was written",
            operation=operation,
        ) from exc
    except (PoolTimeoutError, OSError) as exc:
        _unavailable(operation, exc, on_error)


# SQLSTATE classes caused by the data itself: 22 data exception (value out of range, string
# too long...), 54 program limit exceeded (an index row over the btree maximum...).
_DATA_SQLSTATE_CLASSES = frozenset({"22", "54"})


def _refused_value(exc: DBAPIError) -> bool:
    """Whether the driver refused a value (the same body would fail again), as opposed to a
    store that is down, locked or timed out (worth retrying)."""
    if isinstance(exc, DataError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _DATA_SQLSTATE_CLASSES


def _unavailable(operation: str, exc: Exception,
                 on_error: Callable[[str], None] | None) -> NoReturn:
    logger.error("store operation %s failed: %s", operation, exc,
                 extra={"operation": operation})
    if on_error is not None:
        on_error(operation)
    raise StoreUnavailable(
        f"the store is unavailable ({operation}): {type(exc).__name__}; nothing was written",
        operation=operation,
    ) from exc


def _sqlite_file(url: sa.URL) -> Path | None:
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module; SQLAlchemy emits it in _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An :class:`AsyncEngine` plus transaction helpers; owned by the app's lifespan."""

    def __init__(self, engine: AsyncEngine, *,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self.on_error = on_error
        # SQLite has one writer at a time. Queueing this process's writers here wakes the
        # next one the moment the lock is free; left to SQLite, a second writer polls the
        # file lock with sleeps of up to 100 ms (its busy handler), which made an apply that
        # met the outbox relay's write wait ~10 ms at the median and ~35 ms at p99.
        self._sqlite_writers = asyncio.Lock()

    @classmethod
    def create(cls, dsn: str, *, timeout: float = 30.0, pool_size: int = 10,
               on_error: Callable[[str], None] | None = None) -> Database:
        """Build the engine for an async ``dsn`` (see ``config.normalize_dsn``).

        Args:
            dsn: ``sqlite+aiosqlite:///FILE`` or ``postgresql+asyncpg://…``.
            timeout: seconds to wait for the SQLite lock / a PostgreSQL connection.
            pool_size: PostgreSQL connections kept open (as many again may overflow).
            on_error: called with the operation name of every store failure.
        """
        url = make_url(dsn)
        kwargs: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite":
            path = _sqlite_file(url)
            if path is not None:
                path.expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": timeout}
        else:
            # A server restart leaves dead pooled connections: ping them on checkout.
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = {"timeout": timeout, "command_timeout": timeout}
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_timeout"] = timeout
        engine = create_async_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            _install_sqlite_hooks(engine)
        return cls(engine, on_error=on_error)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def errors(self, operation: str) -> Any:
        """:func:`store_errors` reporting to this database's ``on_error`` hook."""
        return store_errors(operation, on_error=self.on_error)

    @asynccontextmanager
    async def read(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """A read transaction (a consistent snapshot), rolled back at the end."""
        with self.errors(operation):
            async with self.engine.connect() as conn, conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on any error.

        On SQLite it starts with ``BEGIN IMMEDIATE`` (writers are serialised up front).
        """
        if self.dialect == "sqlite":
            async with self._sqlite_writers, self._transaction(operation, immediate=True) as conn:
                yield conn
        else:
            async with self._transaction(operation, immediate=False) as conn:
                yield conn

    @asynccontextmanager
    async def _transaction(self, operation: str, *, immediate: bool
                           ) -> AsyncIterator[AsyncConnection]:
        with self.errors(operation):
            async with self.engine.connect() as conn:
                if immediate:
                    await conn.execution_options(**{_IMMEDIATE: True})
                async with conn.begin():
                    yield conn

    async def ping(self) -> None:
        """``SELECT 1``; raises ``StoreUnavailable`` when the database does not answer."""
        async with self.read("ping") as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({redact_dsn(str(self.engine.url))!r})"
