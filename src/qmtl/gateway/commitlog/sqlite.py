"""The commit log in a SQLite file (the default): stdlib ``sqlite3`` on one worker thread.

Every call runs on a single dedicated thread (so the one connection is only ever used from
that thread, and appends of one process are serialised); the event loop awaits it. The file
is in WAL mode with ``synchronous=FULL`` — an appended batch survives a power cut.

One append is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken first, so two
processes appending the same ``run_id`` serialise and the second sees the first's run):
check the run → insert every record → insert the run → commit. Any failure rolls back.
Waiting longer than ``busy_timeout`` for another writer is reported as unavailable.
Any other failure (cannot open, disk I/O, read-only) also closes the connection, so every
later call opens the file afresh: a log that could not be written recovers by itself once
the file or its folder is fixed.

Tables::

    commit_records(seq INTEGER PRIMARY KEY, ts_ms, batch_id UNIQUE, record_json)
    commit_runs(run_id PRIMARY KEY, body_hash, response_json, created_ms, batch_ids_json)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from qmtl.contracts import ComponentHealth
from qmtl.contracts.errors import CommitLogUnavailable

from .base import (
    AppendResult,
    CommitLog,
    CommitRecord,
    EncodedAppend,
    check_tail_limit,
    decode_record,
    encode_append,
    stored_run_result,
)

__all__ = ["DEFAULT_SQLITE_PATH", "SqliteCommitLog"]

logger = logging.getLogger(__name__)

DEFAULT_SQLITE_PATH = "./.qmtl/commitlog.db"
T = TypeVar("T")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS commit_records (
        seq INTEGER PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        batch_id TEXT NOT NULL UNIQUE,
        record_json TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS commit_runs (
        run_id TEXT PRIMARY KEY,
        body_hash TEXT NOT NULL,
        response_json TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        batch_ids_json TEXT NOT NULL
    )""",
)


class _Replay(Exception):
    """The run was already appended (internal: carries the stored answer out of the thread)."""

    def __init__(self, body_hash: str, response_json: str, batch_ids_json: str) -> None:
        super().__init__(body_hash)
        self.body_hash = body_hash
        self.response_json = response_json
        self.batch_ids_json = batch_ids_json


class SqliteCommitLog(CommitLog):
    """The commit log in the SQLite database at ``path`` (``":memory:"`` for unit tests).

    Args:
        path: database file; parent folders are created by :meth:`start`.
        busy_timeout: seconds to wait for another writer's lock before failing.
        read_only: open an existing file for reading only (``qmtl commitlog tail``): nothing
            is created — no folder, no file, no table — and a missing file is unavailable.
    """

    def __init__(self, path: str | Path = DEFAULT_SQLITE_PATH, *,
                 busy_timeout: float = 5.0, read_only: bool = False) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # Test-only fault injection: called on the worker thread inside the append
        # transaction with a stage name ("after_records", "before_commit"); may raise.
        self._fault_hook: Callable[[str], None] | None = None

    # -- plumbing -------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise CommitLogUnavailable("the commit log is closed", backend="sqlite")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="qmtl-commitlog")
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, fn)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            # IntegrityError is turned into ValueError on the thread; what is left here is
            # "cannot open / locked / disk I/O / corrupt": the store is unavailable.
            logger.error("commit log %s failed: %r", self.path, exc,
                         extra={"backend": "sqlite"})
            locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
            if not locked and self.path != ":memory:":
                # Reopen on the next call: a folder or file fixed since then must be picked
                # up, not hidden behind a connection (or a failed open) kept forever.
                await loop.run_in_executor(executor, self._forget_connection)
            raise CommitLogUnavailable(
                f"the commit log is unavailable ({exc}); nothing was written",
                backend="sqlite",
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        """Open the database (on the worker thread) the first time it is needed."""
        if self._conn is None and self.read_only:
            self._conn = self._open_read_only()
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                   isolation_level=None, check_same_thread=False)
            try:
                if self.path != ":memory:":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                for statement in _SCHEMA:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _open_read_only(self) -> sqlite3.Connection:
        if not Path(self.path).is_file():
            # sqlite3 would create it (and a reader must leave no empty log behind).
            raise sqlite3.OperationalError(f"no commit log file at {self.path}")
        # mode=rw, not ro: never creates the file, and unlike a read-only connection it
        # removes the -wal/-shm files it needed when it closes (a reader leaves no trace).
        uri = f"{Path(self.path).resolve().as_uri()}?mode=rw"
        return sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)

    def _forget_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                logger.warning("closing the failed commit log connection: %r", exc)

    async def start(self) -> None:
        await self._run(self._connection)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # refuse new calls while the connection closes
        executor, conn = self._executor, self._conn
        if executor is not None:
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            executor.shutdown(wait=False)
        self._executor = self._conn = None

    # -- the log --------------------------------------------------------------------------

    def _inject(self, stage: str) -> None:
        if self._fault_hook is not None:
            self._fault_hook(stage)

    def _append_sync(self, encoded: EncodedAppend, created_ms: int) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if encoded.run_id is not None:
                row = conn.execute(
                    "SELECT body_hash, response_json, batch_ids_json FROM commit_runs "
                    "WHERE run_id = ?", (encoded.run_id,),
                ).fetchone()
                if row is not None:
                    raise _Replay(*row)
            for record, record_json in encoded.records:
                try:
                    conn.execute(
                        "INSERT INTO commit_records (ts_ms, batch_id, record_json) "
                        "VALUES (?, ?, ?)", (record.ts_ms, record.batch_id, record_json),
                    )
                except sqlite3.IntegrityError as exc:
                    raise ValueError(f"batch_id {record.batch_id!r} is already in the "
                                     "commit log; nothing was written") from exc
            self._inject("after_records")
            if encoded.run_id is not None:
                conn.execute(
                    "INSERT INTO commit_runs (run_id, body_hash, response_json, created_ms, "
                    "batch_ids_json) VALUES (?, ?, ?, ?, ?)",
                    (encoded.run_id, encoded.body_hash, encoded.response_json, created_ms,
                     encoded.batch_ids_json),
                )
            self._inject("before_commit")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def append(self, records: Sequence[CommitRecord], *, run_id: str | None,
                     body_hash: str, response: dict[str, Any]) -> AppendResult:
        encoded = encode_append(records, run_id=run_id, body_hash=body_hash,
                                response=response)
        created_ms = time.time_ns() // 1_000_000
        try:
            await self._run(lambda: self._append_sync(encoded, created_ms))
        except _Replay as replay:
            assert run_id is not None  # only a run is replayed
            return stored_run_result(run_id, body_hash=body_hash, stored_hash=replay.body_hash,
                                     response_json=replay.response_json,
                                     batch_ids_json=replay.batch_ids_json)
        return AppendResult(batch_ids=encoded.batch_ids, replayed=False, response=None)

    def _stored_run_sync(self, run_id: str) -> tuple[str, str, str] | None:
        row = self._connection().execute(
            "SELECT body_hash, response_json, batch_ids_json FROM commit_runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    async def replay(self, run_id: str, *, body_hash: str) -> AppendResult | None:
        stored = await self._run(lambda: self._stored_run_sync(run_id))
        if stored is None:
            return None
        return stored_run_result(run_id, body_hash=body_hash, stored_hash=stored[0],
                                 response_json=stored[1], batch_ids_json=stored[2])

    def _tail_sync(self, limit: int) -> list[str]:
        rows = self._connection().execute(
            "SELECT record_json FROM commit_records ORDER BY seq DESC LIMIT ?", (limit,),
        ).fetchall()
        return [row[0] for row in reversed(rows)]

    async def tail(self, *, limit: int = 50) -> list[CommitRecord]:
        check_tail_limit(limit)
        texts = await self._run(lambda: self._tail_sync(limit))
        return [decode_record(text) for text in texts]

    async def health(self) -> ComponentHealth:
        try:
            await self._run(lambda: self._connection().execute(
                "SELECT 1 FROM commit_runs LIMIT 1").fetchone())
        except CommitLogUnavailable as exc:
            return ComponentHealth(status="down", detail=exc.message, backend="sqlite")
        return ComponentHealth(status="ok", backend="sqlite")
