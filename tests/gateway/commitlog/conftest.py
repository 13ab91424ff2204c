"""The commit-log contract suite runs every test against a SQLite file and a real Redis.

``backend.make()`` opens another log on the same storage (another gateway process, as far
as the log can tell); ``backend.outage(log)`` makes the storage refuse writes while inside:
Redis is stopped, and a SQLite file is write-locked by another connection for longer than
the log's busy timeout.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qmtl.gateway.commitlog import CommitLog, CommitRecord, RedisCommitLog, SqliteCommitLog
from tests._servers import RedisServer


@dataclass
class Backend:
    name: str
    sqlite_path: Path | None = None
    redis_server: RedisServer | None = None
    created: list[CommitLog] = field(default_factory=list)

    def make(self, *, fail_fast: bool = False) -> CommitLog:
        log: CommitLog
        if self.sqlite_path is not None:
            log = SqliteCommitLog(self.sqlite_path, busy_timeout=0.1 if fail_fast else 10.0)
        else:
            assert self.redis_server is not None
            log = RedisCommitLog(self.redis_server.url, socket_timeout=2.0)
        self.created.append(log)
        return log

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        if self.redis_server is not None:
            self.redis_server.stop()
            try:
                yield
            finally:
                self.redis_server.start()
            return
        assert self.sqlite_path is not None
        locker = sqlite3.connect(self.sqlite_path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # holds the write lock until the rollback
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        # A folder that does not exist yet: start() must create it.
        b = Backend("sqlite", sqlite_path=tmp_path / "state" / "commitlog.db")
    else:
        request.getfixturevalue("redis_url")  # running and flushed
        b = Backend("redis", redis_server=request.getfixturevalue("redis_server"))
    yield b
    for log in b.created:
        await log.close()


@pytest.fixture
async def log(backend: Backend) -> CommitLog:
    log = backend.make()
    await log.start()
    return log


def batch(batch_id: str, *, world: str = "w1", ts_ms: int = 1_700_000_000_000,
          **extra: Any) -> CommitRecord:
    """A record shaped like the gateway's (SPEC 4)."""
    payload: dict[str, Any] = {
        "event": "rebalance_batch",
        "version": 2,
        "world_id": world,
        "scope": "per_world",
        "orders": [
            {"symbol": "BTCUSDT", "quantity": -0.25, "side": "sell", "time_in_force": "IOC",
             "venue": "binance", "reduce_only": True, "client_order_id": f"{batch_id}-0"},
            {"symbol": "ETHUSDT", "quantity": 1.5, "side": "buy", "time_in_force": "GTC",
             "client_order_id": f"{batch_id}-1"},
        ],
        "counts": {"orders": 2, "reduce_only": 1},
        "reduce_only_ratio": 0.5,
        "submitted_at": "2024-01-01T00:00:00Z",
        **extra,
    }
    return CommitRecord.rebalance(ts_ms=ts_ms, batch_id=batch_id, payload=payload)
