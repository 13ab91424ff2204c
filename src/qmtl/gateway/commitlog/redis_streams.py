"""The commit log on Redis Streams, shareable by several gateways.

Keys (one Redis instance or primary; the keys are not Cluster hash-tagged)::

    qmtl:commitlog:gateway.rebalance            stream; fields batch_id, record (JSON array)
    qmtl:commitlog:gateway.rebalance:batch_ids  set of every batch_id written
    qmtl:commitlog:run:<run_id>                 hash: body_hash, response, created_ms, batch_ids

One Lua script does a whole append (Redis runs a script atomically, with nothing else in
between): check the run → refuse a ``batch_id`` already written → ``XADD`` every record →
write the run hash. Two gateways appending the same ``run_id`` at once therefore write one
set of records; the other gets the replay. The checks come before the first write, and
Redis refuses a writing script for lack of memory before its first write, so a failing
script leaves nothing half-written. The stream is never trimmed: it is an audit log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from qmtl.contracts import ComponentHealth
from qmtl.contracts.errors import CommitLogUnavailable, RunIdConflict

from .base import (
    REBALANCE_TOPIC,
    AppendResult,
    CommitLog,
    CommitRecord,
    check_tail_limit,
    decode_record,
    encode_append,
    stored_run_result,
)

__all__ = ["BATCH_IDS_KEY", "RUN_KEY_PREFIX", "STREAM_KEY", "RedisCommitLog"]

logger = logging.getLogger(__name__)

STREAM_KEY = f"qmtl:commitlog:{REBALANCE_TOPIC}"
BATCH_IDS_KEY = f"{STREAM_KEY}:batch_ids"
RUN_KEY_PREFIX = "qmtl:commitlog:run:"

# KEYS[1] stream, KEYS[2] batch-id set, KEYS[3] run hash (only when a run_id is given).
# ARGV[1] body_hash, ARGV[2] response JSON, ARGV[3] created_ms, ARGV[4] batch ids JSON,
# then (batch_id, record JSON) pairs.
_APPEND_LUA = """
local run_key = KEYS[3]
if run_key then
  local stored = redis.call('HMGET', run_key, 'body_hash', 'response', 'batch_ids')
  if stored[1] then
    if stored[1] == ARGV[1] then
      return {'replayed', stored[2], stored[3]}
    end
    return {'conflict', stored[1]}
  end
end
for i = 5, #ARGV, 2 do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
    return {'duplicate', ARGV[i]}
  end
end
local ids = {'ok'}
for i = 5, #ARGV, 2 do
  redis.call('SADD', KEYS[2], ARGV[i])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'batch_id', ARGV[i], 'record', ARGV[i + 1])
end
if run_key then
  redis.call('HSET', run_key, 'body_hash', ARGV[1], 'response', ARGV[2],
             'created_ms', ARGV[3], 'batch_ids', ARGV[4])
end
return ids
"""


class RedisCommitLog(CommitLog):
    """The commit log in Redis (``redis://`` or ``rediss://`` URL).

    Args:
        url: the Redis URL handed to redis-py.
        socket_timeout: seconds to wait for an answer (redis-py's own retries are off).
        connect_timeout: seconds to wait for a TCP connection.
        health_timeout: seconds :meth:`health` waits for ``PING``.
    """

    def __init__(self, url: str, *, socket_timeout: float = 5.0, connect_timeout: float = 2.0,
                 health_timeout: float = 1.0) -> None:
        self.url = url
        self.health_timeout = health_timeout
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._client: Redis | None = None
        self._append_script: AsyncScript | None = None
        self._closed = False

    def _redis(self) -> Redis:
        if self._closed:
            raise CommitLogUnavailable("the commit log is closed", backend="redis")
        if self._client is None:
            self._client = Redis.from_url(
                self.url, socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._connect_timeout,
                retry=Retry(NoBackoff(), 0), decode_responses=True, protocol=2,
            )
            self._append_script = self._client.register_script(_APPEND_LUA)
        return self._client

    def _script(self) -> AsyncScript:
        self._redis()
        if self._append_script is None:  # pragma: no cover - set together with the client
            raise RuntimeError("append script not registered")
        return self._append_script

    @staticmethod
    def _unavailable(exc: Exception, *, writing: bool) -> CommitLogUnavailable:
        logger.error("Redis commit log failed: %r", exc, extra={"backend": "redis"})
        if writing and isinstance(exc, RedisTimeoutError):
            return CommitLogUnavailable(
                f"the commit log did not answer in time ({exc}); the append may have been "
                "written — retry with the same run_id to find out", backend="redis",
            )
        suffix = "; nothing was written" if writing else ""
        return CommitLogUnavailable(f"the commit log is unavailable ({exc}){suffix}",
                                    backend="redis")

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._redis().ping(), timeout=self.health_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            # Not fatal: every append reports the outage itself, and health shows it.
            logger.warning("Redis commit log is not reachable at start-up: %r", exc,
                           extra={"backend": "redis"})

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def append(self, records: Sequence[CommitRecord], *, run_id: str | None,
                     body_hash: str, response: dict[str, Any]) -> AppendResult:
        encoded = encode_append(records, run_id=run_id, body_hash=body_hash,
                                response=response)
        script = self._script()
        keys = [STREAM_KEY, BATCH_IDS_KEY]
        if run_id is not None:
            keys.append(RUN_KEY_PREFIX + run_id)
        args: list[str | int] = [body_hash, encoded.response_json, time.time_ns() // 1_000_000,
                                 encoded.batch_ids_json]
        for record, record_json in encoded.records:
            args += [record.batch_id, record_json]
        try:
            reply = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc, writing=True) from exc
        outcome = reply[0]
        if outcome == "replayed":
            assert run_id is not None  # only a run is replayed
            return stored_run_result(run_id, body_hash=body_hash, stored_hash=body_hash,
                                     response_json=reply[1], batch_ids_json=reply[2])
        if outcome == "conflict":
            raise RunIdConflict(f"run_id {run_id!r} was already used with a different body",
                                run_id=run_id)
        if outcome == "duplicate":
            raise ValueError(f"batch_id {reply[1]!r} is already in the commit log; "
                             "nothing was written")
        return AppendResult(batch_ids=encoded.batch_ids, replayed=False, response=None)

    async def _stored_run(self, run_id: str) -> tuple[str, str, str] | None:
        try:
            values: Any = await self._redis().hmget(RUN_KEY_PREFIX + run_id,
                                                    ["body_hash", "response", "batch_ids"])
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc, writing=False) from exc
        if values[0] is None:
            return None
        return str(values[0]), str(values[1]), str(values[2])

    async def replay(self, run_id: str, *, body_hash: str) -> AppendResult | None:
        stored = await self._stored_run(run_id)
        if stored is None:
            return None
        return stored_run_result(run_id, body_hash=body_hash, stored_hash=stored[0],
                                 response_json=stored[1], batch_ids_json=stored[2])

    async def tail(self, *, limit: int = 50) -> list[CommitRecord]:
        check_tail_limit(limit)
        if limit == 0:
            return []
        try:
            entries: Any = await self._redis().xrevrange(STREAM_KEY, max="+", min="-",
                                                         count=limit)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc, writing=False) from exc
        return [decode_record(fields["record"]) for _id, fields in reversed(entries)]

    async def health(self) -> ComponentHealth:
        if self._closed:
            return ComponentHealth(status="down", detail="the commit log is closed",
                                   backend="redis")
        try:
            await asyncio.wait_for(self._redis().ping(), timeout=self.health_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            return ComponentHealth(status="down", detail=f"Redis did not answer PING: {exc!r}",
                                   backend="redis")
        return ComponentHealth(status="ok", backend="redis")
