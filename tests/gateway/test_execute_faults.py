"""Submit atomicity when the commit log fails in the middle of an execute.

The SQLite commit log's test-only fault hook raises a disk error inside the append
transaction, after the first batches were inserted: the gateway must answer 503
``E_COMMITLOG_UNAVAILABLE`` and the log must hold nothing (the transaction rolled back).
Everything else is real: uvicorn, HTTP, the WorldService and the SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

from qmtl.gateway.commitlog import SqliteCommitLog

from ._support import scaling_request
from .conftest import Stack


def tail(path: Path) -> list[object]:
    async def read() -> list[object]:
        log = SqliteCommitLog(path)
        await log.start()
        try:
            return [r.to_wire() for r in await log.tail(limit=100)]
        finally:
            await log.close()

    return asyncio.run(read())


@pytest.mark.parametrize("stage", ["after_records", "before_commit"])
def test_a_failing_append_writes_nothing_and_answers_503(stack: Stack, tmp_path: Path,
                                                         stage: str) -> None:
    ws = stack.worldservice()
    path = tmp_path / "faulty.db"
    log = SqliteCommitLog(path)

    def fail(at: str) -> None:
        if at == stage:
            raise sqlite3.OperationalError("disk I/O error")

    log._fault_hook = fail
    gw = stack.gateway(ws.url, commit_log_instance=log, enforce_live_guard=False)
    body = scaling_request(run_id="atomic-1")
    # per_strategy: two batches (w1/s1, w1/s2) in one append
    response = httpx.post(f"{gw.url}/rebalancing/execute?submit=true&per_strategy=true",
                          json=body, timeout=30)
    assert response.status_code == 503
    assert response.json()["detail"]["code"] == "E_COMMITLOG_UNAVAILABLE"
    assert tail(path) == []
    assert gw.metric("rebalance_batches_submitted_total", world_id="w1",
                     scope="per_strategy") == 0
    # The run was not recorded either: once the log works, the same run_id goes through.
    log._fault_hook = None
    retry = httpx.post(f"{gw.url}/rebalancing/execute?submit=true&per_strategy=true",
                       json=body, timeout=30)
    assert retry.status_code == 200, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert len(tail(path)) == 2


def test_commit_log_that_cannot_start_refuses_submit_until_it_can_be_opened(
    stack: Stack, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log's folder should be")
    ws = stack.worldservice()
    gw = stack.gateway(ws.url, commit_log_instance=SqliteCommitLog(blocker / "log.db"),
                       enforce_live_guard=False)
    health = httpx.get(f"{gw.url}/health").json()
    assert health["commit_log"]["status"] == "down" and health["status"] == "degraded"
    dry = httpx.post(f"{gw.url}/rebalancing/execute", json=scaling_request(), timeout=30)
    assert dry.status_code == 200  # a dry run needs no commit log
    submit = httpx.post(f"{gw.url}/rebalancing/execute?submit=true", json=scaling_request(),
                        timeout=30)
    assert submit.status_code == 503
    assert submit.json()["detail"]["code"] == "E_COMMITLOG_UNAVAILABLE"
    # The path is fixed while the gateway runs: it is retried, not left degraded for good.
    blocker.unlink()
    health = httpx.get(f"{gw.url}/health").json()
    assert health["commit_log"]["status"] == "ok" and health["status"] == "ok"
    submit = httpx.post(f"{gw.url}/rebalancing/execute?submit=true", json=scaling_request(),
                        timeout=30)
    assert submit.status_code == 200, submit.text
    assert len(tail(blocker / "log.db")) == 1
