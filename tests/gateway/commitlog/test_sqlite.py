"""SQLite commit log: schema, WAL, URLs, and rollback inside the transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qmtl.contracts.errors import CommitLogUnavailable, ConfigError
from qmtl.gateway.commitlog import (
    DEFAULT_SQLITE_PATH,
    RedisCommitLog,
    SqliteCommitLog,
    create_commit_log,
)

from .conftest import batch


@pytest.fixture
async def sqlite_log(tmp_path: Path) -> AsyncIterator[SqliteCommitLog]:
    log = SqliteCommitLog(tmp_path / "commitlog.db")
    await log.start()
    yield log
    await log.close()


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


async def test_tables_and_wal_mode(sqlite_log: SqliteCommitLog) -> None:
    path = Path(sqlite_log.path)
    await sqlite_log.append([batch("b1")], run_id="r1", body_hash="h", response={"a": 1})

    assert columns(path, "commit_records") == ["seq", "ts_ms", "batch_id", "record_json"]
    assert columns(path, "commit_runs") == [
        "run_id", "body_hash", "response_json", "created_ms", "batch_ids_json"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        record_json, = conn.execute("SELECT record_json FROM commit_records").fetchone()
        run = conn.execute("SELECT run_id, body_hash, response_json, batch_ids_json "
                           "FROM commit_runs").fetchone()
    assert json.loads(record_json)[:3] == ["gateway.rebalance", 1_700_000_000_000, "b1"]
    assert run == ("r1", "h", '{"a":1}', '["b1"]')


@pytest.mark.parametrize("stage", ["after_records", "before_commit"])
async def test_a_failure_inside_the_transaction_rolls_everything_back(
        sqlite_log: SqliteCommitLog, stage: str) -> None:
    """Uses the test-only fault injection hook ``_fault_hook`` to make SQLite fail after
    the records (and, at ``before_commit``, the run) were inserted but before COMMIT."""

    def fail(at: str) -> None:
        if at == stage:
            raise sqlite3.OperationalError(f"injected disk I/O error at {at}")

    await sqlite_log.append([batch("kept")], run_id=None, body_hash="h", response={})
    sqlite_log._fault_hook = fail

    with pytest.raises(CommitLogUnavailable, match="injected"):
        await sqlite_log.append([batch("b1"), batch("b2")], run_id="r1", body_hash="h",
                                response={})

    sqlite_log._fault_hook = None
    assert [r.batch_id for r in await sqlite_log.tail()] == ["kept"]
    retry = await sqlite_log.append([batch("b1"), batch("b2")], run_id="r1", body_hash="h",
                                    response={})
    assert not retry.replayed and retry.batch_ids == ["b1", "b2"]


async def test_in_memory_database_for_unit_tests() -> None:
    log = create_commit_log("sqlite:///:memory:")
    try:
        assert isinstance(log, SqliteCommitLog) and log.path == ":memory:"
        await log.append([batch("b1")], run_id="r", body_hash="h", response={"x": 1})
        assert [r.batch_id for r in await log.tail()] == ["b1"]
        assert (await log.append([], run_id="r", body_hash="h", response={})).replayed
    finally:
        await log.close()


async def test_an_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    log = SqliteCommitLog(blocker / "commitlog.db")
    try:
        with pytest.raises(CommitLogUnavailable) as info:
            await log.start()
        assert info.value.context == {"backend": "sqlite"}
        health = await log.health()
        assert health.status == "down" and health.detail
    finally:
        await log.close()


async def test_a_log_that_could_not_be_written_is_retried_on_every_call(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.write_text("a file where the folder should be")
    log = SqliteCommitLog(folder / "commitlog.db")
    try:
        with pytest.raises(CommitLogUnavailable):
            await log.start()
        with pytest.raises(CommitLogUnavailable):
            await log.append([batch("b1")], run_id=None, body_hash="h", response={})
        folder.unlink()
        assert (await log.health()).status == "ok"
        await log.append([batch("b1")], run_id=None, body_hash="h", response={})
        assert [r.batch_id for r in await log.tail(limit=10)] == ["b1"]
    finally:
        await log.close()


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "commitlog.db"
    path.write_bytes(b"this is not an sqlite file at all" * 100)
    log = SqliteCommitLog(path)
    try:
        with pytest.raises(CommitLogUnavailable):
            await log.append([batch("b1")], run_id=None, body_hash="h", response={})
    finally:
        await log.close()


async def test_the_default_url_creates_dot_qmtl(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = create_commit_log("sqlite://")
    try:
        assert isinstance(log, SqliteCommitLog) and log.path == DEFAULT_SQLITE_PATH
        await log.start()
        assert (tmp_path / ".qmtl" / "commitlog.db").is_file()
    finally:
        await log.close()


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///./.qmtl/commitlog.db", "./.qmtl/commitlog.db"),
    ("sqlite:///relative/log.db", "relative/log.db"),
    ("sqlite:////abs/dir/log.db", "/abs/dir/log.db"),
    ("sqlite:///", DEFAULT_SQLITE_PATH),
    ("SQLITE:///x.db", "x.db"),
])
def test_sqlite_urls(url: str, path: str) -> None:
    log = create_commit_log(url)
    assert isinstance(log, SqliteCommitLog) and log.path == path


def test_redis_urls_and_unknown_schemes() -> None:
    assert isinstance(create_commit_log("redis://127.0.0.1:6379/0"), RedisCommitLog)
    assert isinstance(create_commit_log("rediss://127.0.0.1:6379/0"), RedisCommitLog)
    with pytest.raises(ConfigError, match="scheme 'postgresql'") as info:
        create_commit_log("postgresql://localhost/db")
    assert info.value.context == {"key": "gateway.commit_log", "scheme": "postgresql"}
    with pytest.raises(ConfigError, match="no scheme"):
        create_commit_log("./commitlog.db")
    with pytest.raises(ConfigError, match="parameters"):
        create_commit_log("sqlite:///x.db?mode=ro")
