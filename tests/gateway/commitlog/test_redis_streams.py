"""Redis commit log against a real redis-server: key layout and the script's lifecycle."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from qmtl.contracts.errors import CommitLogUnavailable
from qmtl.gateway.commitlog import RedisCommitLog
from tests._servers import RedisServer

from .conftest import batch

pytestmark = pytest.mark.redis


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_log(redis_url: str) -> AsyncIterator[RedisCommitLog]:
    log = RedisCommitLog(redis_url)
    await log.start()
    yield log
    await log.close()


async def test_key_layout(redis_log: RedisCommitLog, raw: Redis) -> None:
    records = [batch("b1"), batch("b2")]
    await redis_log.append(records, run_id="run-1", body_hash="h1", response={"n": 1})

    entries: Any = await raw.xrange("qmtl:commitlog:gateway.rebalance")
    assert [fields["batch_id"] for _id, fields in entries] == ["b1", "b2"]
    assert [json.loads(fields["record"]) for _id, fields in entries] == [
        r.to_wire() for r in records]
    run = await raw.hgetall("qmtl:commitlog:run:run-1")
    assert run["body_hash"] == "h1"
    assert json.loads(run["response"]) == {"n": 1}
    assert json.loads(run["batch_ids"]) == ["b1", "b2"]
    assert int(run["created_ms"]) > 1_600_000_000_000
    assert await raw.smembers("qmtl:commitlog:gateway.rebalance:batch_ids") == {"b1", "b2"}


async def test_appends_survive_a_flushed_script_cache(redis_log: RedisCommitLog,
                                                      raw: Redis) -> None:
    await redis_log.append([batch("b1")], run_id=None, body_hash="h", response={})
    await raw.script_flush()  # what a Redis restart does to cached scripts

    await redis_log.append([batch("b2")], run_id=None, body_hash="h", response={})

    assert [r.batch_id for r in await redis_log.tail()] == ["b1", "b2"]


async def test_start_while_redis_is_down_is_not_fatal(redis_server: RedisServer,
                                                      redis_url: str) -> None:
    log = RedisCommitLog(redis_url, socket_timeout=1.0)
    redis_server.stop()
    try:
        await log.start()  # logs a warning; the gateway can still come up
        assert (await log.health()).status == "down"
        with pytest.raises(CommitLogUnavailable, match="nothing was written"):
            await log.append([batch("b1")], run_id=None, body_hash="h", response={})
        with pytest.raises(CommitLogUnavailable):
            await log.tail()
        redis_server.start()
        assert (await log.health()).status == "ok"
        await log.append([batch("b1")], run_id=None, body_hash="h", response={})
        assert [r.batch_id for r in await log.tail()] == ["b1"]
    finally:
        await log.close()
        redis_server.start()
