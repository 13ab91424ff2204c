"""The ControlBus on Redis Streams: one stream per topic, key ``qmtl:controlbus:<topic>``.

* ``publish`` is ``XADD key MAXLEN ~ retention * payload <bytes>`` — approximate trimming,
  so a topic keeps at least ``retention`` entries (a little more until Redis can drop a
  whole stream node). It raises :class:`ControlBusError` when Redis does not answer; redis-py's
  own retries are off, the caller (the outbox relay) owns retrying.
* ``subscribe`` loops ``XREAD BLOCK`` from the last entry id it yielded. With ``after=None``
  the start is the newest entry id at the time the subscription is awaited (``$`` resolved to
  a concrete id, so nothing published afterwards is missed even across reconnects). On a
  connection error it logs, waits (bounded exponential backoff, 0.1 s doubling to 2 s by
  default) and resumes from the last yielded id; only :meth:`close` or
  :meth:`Subscription.aclose` end it.
* Positions are stream entry ids ``"<ms>-<n>"``; ``seq = ms * 1000 + n`` (about 1.7e15
  today, below 2**53 until the year 2255, so it survives JSON parsers that use doubles).

  **Assumption: n < 1000**, i.e. fewer than 1,000 entries on one topic within one
  millisecond of Redis time (n counts entries added in the same millisecond). Beyond that
  ``seq`` stops being unique — entry ``ms-1000`` gets the seq of ``(ms+1)-0`` — and stops
  growing strictly with the position. Subscriptions and history are unaffected (they use
  entry ids), but a client resuming by ``since_seq`` could skip or repeat such entries.
  ``publish`` logs a warning and counts ``seq_overflows`` when it happens.
* The epoch of a topic (:meth:`RedisStreamsControlBus.epoch`) is a random id stored next to
  its stream (``qmtl:controlbus:epoch:<topic>``, created with ``SET NX``): every gateway on
  one Redis shares it, and it changes only when the Redis data is lost.
* Approximate trimming can drop entries that a slow subscriber has not read yet; XREAD then
  continues from the oldest retained entry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from qmtl.contracts import ComponentHealth

from .base import BusMessage, ControlBus, ControlBusError, Subscription, check_limit, check_topic

__all__ = ["DEFAULT_REDIS_RETENTION", "KEY_PREFIX", "RedisStreamsControlBus", "seq_of"]

logger = logging.getLogger(__name__)

DEFAULT_REDIS_RETENTION = 100_000
KEY_PREFIX = "qmtl:controlbus:"
_PAYLOAD = b"payload"
_ENTRY_ID = re.compile(r"^(\d+)-(\d+)$")
_BACKEND_ERRORS = (RedisError, OSError)
T = TypeVar("T")


def seq_of(entry_id: str) -> int:
    """``ms * 1000 + n`` for the stream entry id ``"ms-n"`` (see the module docstring).

    Raises:
        ValueError: ``entry_id`` is not of the form ``"<ms>-<n>"``.
    """
    match = _ENTRY_ID.match(entry_id) if isinstance(entry_id, str) else None
    if match is None:
        raise ValueError(
            f"{entry_id!r} is not a position of the Redis bus (a stream id '<ms>-<n>')"
        )
    return int(match[1]) * 1000 + int(match[2])


def _check_position(after: str | None) -> str | None:
    if after is not None:
        try:
            seq_of(after)
        except ValueError as exc:
            raise ValueError(f"after: {exc}") from None
    return after


def redact(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisStreamsControlBus(ControlBus):
    """A ControlBus on Redis Streams (single Redis instance or a primary; not Cluster-aware).

    Args:
        url: ``redis://`` or ``rediss://`` URL handed to redis-py.
        retention: approximate number of entries kept per topic (``MAXLEN ~``).
        socket_timeout: seconds to wait for any answer; must exceed ``block_ms``.
        connect_timeout: seconds to wait for a TCP connection.
        block_ms: how long one ``XREAD BLOCK`` waits, in milliseconds.
        read_count: entries fetched per ``XREAD``.
        health_timeout: seconds :meth:`health` waits for ``PING``.
        backoff_initial, backoff_max: reconnect delays in seconds (doubling, capped).
    """

    def __init__(self, url: str, *, retention: int = DEFAULT_REDIS_RETENTION,
                 socket_timeout: float = 5.0, connect_timeout: float = 2.0,
                 block_ms: int = 1000, read_count: int = 100, health_timeout: float = 1.0,
                 backoff_initial: float = 0.1, backoff_max: float = 2.0) -> None:
        if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
            raise ValueError(f"retention must be an integer >= 1, got {retention!r}")
        if socket_timeout * 1000 <= block_ms:
            raise ValueError("socket_timeout must be longer than block_ms")
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("backoff_initial must be > 0 and <= backoff_max")
        self.url = url
        self.retention = retention
        self.block_ms = block_ms
        self.read_count = read_count
        self.health_timeout = health_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._client: Redis | None = None
        self._closed = False
        self._subscriptions: weakref.WeakSet[_RedisSubscription] = weakref.WeakSet()
        # Plain counters (also logged) so operators and tests can see transient failures.
        self.publish_failures = 0
        self.read_failures = 0
        self.invalid_entries = 0
        self.seq_overflows = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @staticmethod
    def key(topic: str) -> str:
        """The stream key of ``topic``."""
        return KEY_PREFIX + topic

    def _redis(self) -> Redis:
        if self._closed:
            raise ControlBusError(f"the Redis bus {redact(self.url)} is closed")
        if self._client is None:
            self._client = Redis.from_url(
                self.url, socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._connect_timeout,
                retry=Retry(NoBackoff(), 0), decode_responses=False, protocol=2,
            )
        return self._client

    async def start(self) -> None:
        client = self._redis()
        try:
            await asyncio.wait_for(client.ping(), timeout=self.health_timeout)
        except (*_BACKEND_ERRORS, TimeoutError) as exc:
            # Not fatal: publishers retry and subscriptions reconnect once Redis is back.
            logger.warning("Redis bus %s is not reachable at start-up: %r",
                           redact(self.url), exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.interrupt()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def publish(self, topic: str, payload: bytes) -> BusMessage:
        check_topic(topic)
        client = self._redis()
        try:
            raw_id = await client.xadd(self.key(topic), {_PAYLOAD: bytes(payload)},
                                       maxlen=self.retention, approximate=True)
        except _BACKEND_ERRORS as exc:
            self.publish_failures += 1
            raise ControlBusError(f"could not publish to {topic!r} on Redis: {exc}") from exc
        position = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        if int(position.rsplit("-", 1)[1]) >= 1000:
            self.seq_overflows += 1
            logger.warning("more than 1000 entries in one millisecond on %r: seq of %s is "
                           "not unique", topic, position, extra={"topic": topic})
        return BusMessage(topic=topic, position=position, seq=seq_of(position),
                          payload=bytes(payload))

    def subscribe(self, topic: str, *, after: str | None = None) -> Subscription:
        check_topic(topic)
        subscription = _RedisSubscription(self, topic, _check_position(after))
        self._subscriptions.add(subscription)
        return subscription

    async def history(self, topic: str, *, after: str | None = None,
                      limit: int = 1000) -> list[BusMessage]:
        check_topic(topic)
        check_limit(limit)
        _check_position(after)
        if limit == 0:
            return []
        client = self._redis()
        try:
            entries: Any = await client.xrevrange(self.key(topic), max="+",
                                             min="-" if after is None else f"({after}",
                                             count=limit)
        except _BACKEND_ERRORS as exc:
            raise ControlBusError(f"could not read {topic!r} from Redis: {exc}") from exc
        return self._messages(topic, reversed(entries))

    async def epoch(self, topic: str) -> str:
        check_topic(topic)
        client = self._redis()
        key = f"{KEY_PREFIX}epoch:{topic}"
        try:
            # The first reader creates it; later readers (other gateways) get the same one.
            await client.set(key, uuid.uuid4().hex, nx=True)
            raw = await client.get(key)
        except _BACKEND_ERRORS as exc:
            raise ControlBusError(f"could not read the epoch of {topic!r} from Redis: {exc}"
                                  ) from exc
        if raw is None:
            raise ControlBusError(f"the epoch of {topic!r} vanished from Redis while read")
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def position_for_seq(self, seq: int) -> str:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError(f"seq must be an integer >= 0, got {seq!r}")
        return f"{seq // 1000}-{seq % 1000}"

    async def health(self) -> ComponentHealth:
        if self._closed:
            return ComponentHealth(status="down", detail="Redis bus is closed", backend="redis")
        try:
            await asyncio.wait_for(self._redis().ping(), timeout=self.health_timeout)
        except (*_BACKEND_ERRORS, TimeoutError) as exc:
            return ComponentHealth(status="down", detail=f"Redis did not answer PING: {exc!r}",
                                   backend="redis")
        return ComponentHealth(status="ok", backend="redis")

    async def _newest_id(self, topic: str) -> str:
        entries = await self._redis().xrevrange(self.key(topic), max="+", min="-", count=1)
        if not entries:
            return "0-0"
        raw = entries[0][0]
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def _messages(self, topic: str, entries: Any) -> list[BusMessage]:
        messages: list[BusMessage] = []
        for raw_id, fields in entries:
            position = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            payload = fields.get(_PAYLOAD)
            if payload is None:
                self.invalid_entries += 1
                logger.warning("skipping stream entry %s of %r without a payload field",
                               position, topic, extra={"topic": topic})
                continue
            messages.append(BusMessage(topic=topic, position=position, seq=seq_of(position),
                                       payload=payload))
        return messages


class _Interrupted(Exception):
    """The subscription or its bus closed while a read or a backoff sleep was pending."""


class _RedisSubscription(Subscription):
    def __init__(self, bus: RedisStreamsControlBus, topic: str, after: str | None) -> None:
        self.topic = topic
        self._bus = bus
        self._last = after
        self._buffer: deque[BusMessage] = deque()
        self._closed = False
        self._pending: asyncio.Future[Any] | None = None

    @property
    def position(self) -> str | None:
        return self._last

    @property
    def _stopped(self) -> bool:
        return self._closed or self._bus.closed

    def interrupt(self) -> None:
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()

    async def aclose(self) -> None:
        self.interrupt()

    async def ready(self) -> Subscription:
        if self._last is None and not self._stopped:
            try:
                self._last = await self._bus._newest_id(self.topic)
            except _BACKEND_ERRORS as exc:
                raise ControlBusError(
                    f"could not resolve the start of {self.topic!r} on Redis: {exc}"
                ) from exc
        return self

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` so that :meth:`interrupt` can cancel it without cancelling us."""
        pending: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        self._pending = pending
        try:
            return await pending
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._stopped and task is not None and task.cancelling() == 0:
                raise _Interrupted from None
            raise
        finally:
            self._pending = None

    async def __anext__(self) -> BusMessage:
        delay = self._bus.backoff_initial
        while True:
            if self._stopped:  # also drops what was fetched but not yet yielded
                raise StopAsyncIteration
            if self._buffer:
                break
            try:
                await self._fill()
                delay = self._bus.backoff_initial
            except _Interrupted:
                raise StopAsyncIteration from None
            except ControlBusError:
                if self._stopped:  # the bus closed between two reads
                    raise StopAsyncIteration from None
                raise
            except _BACKEND_ERRORS as exc:
                self._bus.read_failures += 1
                logger.warning(
                    "Redis bus read of %r failed (%r); resuming after %s in %.2fs",
                    self.topic, exc, self._last, delay,
                    extra={"topic": self.topic, "position": self._last},
                )
                try:
                    await self._guarded(asyncio.sleep(delay))
                except _Interrupted:
                    raise StopAsyncIteration from None
                delay = min(delay * 2, self._bus.backoff_max)
        message = self._buffer.popleft()
        self._last = message.position
        return message

    async def _fill(self) -> None:
        client = self._bus._redis()
        if self._last is None:
            self._last = await self._guarded(self._bus._newest_id(self.topic))
        key = self._bus.key(self.topic)
        reply = await self._guarded(
            client.xread({key: self._last}, count=self._bus.read_count,
                         block=self._bus.block_ms)
        )
        for _stream, entries in _stream_entries(reply):
            self._buffer.extend(self._bus._messages(self.topic, entries))
            if entries and not self._buffer:
                # Every entry was invalid: move past them so they are not read again.
                raw = entries[-1][0]
                self._last = raw.decode() if isinstance(raw, bytes) else str(raw)


def _stream_entries(reply: Any) -> list[tuple[Any, Any]]:
    """``XREAD``'s RESP2 reply (``[[stream, entries]]``, or nothing on timeout) as pairs."""
    if not reply:
        return []
    return [(stream, entries) for stream, entries in reply]
