"""Redis Streams bus against a real redis-server: layout, trimming, ids, and outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from qmtl.controlbus import BusMessage, ControlBusError, RedisStreamsControlBus
from qmtl.controlbus.redis_streams import redact, seq_of
from tests._servers import RedisServer, free_port

pytestmark = pytest.mark.redis

HANG_GUARD = 30.0  # seconds; only stops a broken test from hanging


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[RedisStreamsControlBus]:
    bus = RedisStreamsControlBus(redis_url, backoff_initial=0.05, backoff_max=0.4)
    await bus.start()
    yield bus
    await bus.close()


async def wait_until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), HANG_GUARD)
    except TimeoutError:
        pytest.fail(f"never happened: {what}")


async def test_one_stream_per_topic_under_the_documented_key(
        bus: RedisStreamsControlBus, raw: Redis) -> None:
    message = await bus.publish("rebalancing_planned", b'{"id": "e1"}')

    entries = await raw.xrange("qmtl:controlbus:rebalancing_planned")
    assert entries == [(message.position.encode(), {b"payload": b'{"id": "e1"}'})]


async def test_publish_trims_approximately_to_the_retention(
        redis_url: str, raw: Redis) -> None:
    bus = RedisStreamsControlBus(redis_url, retention=100)
    try:
        for i in range(1000):
            await bus.publish("t", str(i).encode())
    finally:
        await bus.close()
    length = await raw.xlen("qmtl:controlbus:t")
    # MAXLEN ~ keeps at least 100 and drops whole stream nodes, so some slack remains.
    assert 100 <= length < 1000


def test_seq_is_ms_times_1000_plus_n() -> None:
    assert seq_of("1700000000000-0") == 1_700_000_000_000_000
    assert seq_of("5-3") == 5003  # 5 * 1000 + 3
    with pytest.raises(ValueError, match="position"):
        seq_of("5")
    bus = RedisStreamsControlBus("redis://127.0.0.1:1/0")
    assert bus.position_for_seq(5003) == "5-3"
    assert bus.position_for_seq(1_700_000_000_000_999) == "1700000000000-999"


async def test_seq_beyond_999_entries_per_millisecond_collides_as_documented(
        bus: RedisStreamsControlBus, raw: Redis) -> None:
    await raw.xadd("qmtl:controlbus:dense", {"payload": "a"}, id="5-1000")
    await raw.xadd("qmtl:controlbus:dense", {"payload": "b"}, id="6-0")

    history = await bus.history("dense")

    # 5 * 1000 + 1000 == 6 * 1000 + 0: the seqs are no longer unique; positions still are.
    assert [(m.position, m.seq) for m in history] == [("5-1000", 6000), ("6-0", 6000)]


async def test_entries_without_payload_are_skipped_and_counted(
        bus: RedisStreamsControlBus, raw: Redis) -> None:
    sub = await bus.subscribe("mixed")
    await raw.xadd("qmtl:controlbus:mixed", {"something": "else"})
    await bus.publish("mixed", b"real")

    got = await asyncio.wait_for(anext(sub), HANG_GUARD)

    assert got.payload == b"real"
    assert bus.invalid_entries == 1


def test_block_must_be_shorter_than_the_socket_timeout() -> None:
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisStreamsControlBus("redis://x", socket_timeout=1.0, block_ms=1000)


def test_redact_hides_the_password() -> None:
    assert redact("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_subscription_survives_a_redis_restart_exactly_once_in_order(
        redis_server: RedisServer, redis_url: str, kill: bool) -> None:
    publisher = RedisStreamsControlBus(redis_url)
    consumer = RedisStreamsControlBus(redis_url, backoff_initial=0.05, backoff_max=0.4)
    try:
        sub = await consumer.subscribe("plans")
        received: list[BusMessage] = []

        async def consume() -> None:
            async for message in sub:
                received.append(message)

        task = asyncio.create_task(consume())
        for i in range(5):
            await publisher.publish("plans", f"before-{i}".encode())
        await wait_until(lambda: len(received) == 5, "5 messages before the outage")

        redis_server.stop(kill=kill)  # the append-only file keeps the stream either way
        with pytest.raises(ControlBusError):
            await publisher.publish("plans", b"lost-while-down")
        assert (await publisher.health()).status == "down"
        with pytest.raises(ControlBusError):
            await publisher.history("plans")
        await wait_until(lambda: consumer.read_failures >= 2, "the reader to hit the outage")

        redis_server.start()
        for i in range(5):
            await publisher.publish("plans", f"after-{i}".encode())
        await wait_until(lambda: len(received) == 10, "10 messages after the restart")

        assert [m.payload for m in received] == (
            [f"before-{i}".encode() for i in range(5)] + [f"after-{i}".encode() for i in range(5)]
        )
        positions = [m.position for m in received]
        assert len(set(positions)) == 10 and [m.seq for m in received] == sorted(
            m.seq for m in received)
        assert (await publisher.health()).status == "ok"
        await consumer.close()
        await asyncio.wait_for(task, HANG_GUARD)  # close ended the iterator
    finally:
        await publisher.close()
        await consumer.close()
        redis_server.start()


async def test_a_subscription_started_while_redis_is_down_waits_for_it(
        redis_server: RedisServer, redis_url: str) -> None:
    bus = RedisStreamsControlBus(redis_url, backoff_initial=0.05, backoff_max=0.4)
    try:
        await bus.publish("plans", b"old")
        redis_server.stop()
        with pytest.raises(ControlBusError):
            await bus.subscribe("plans").ready()
        lazy = bus.subscribe("plans")  # start resolved once Redis answers again
        task = asyncio.create_task(anext(lazy))
        await wait_until(lambda: bus.read_failures >= 1, "the lazy subscription to retry")
        redis_server.start()
        await wait_until(lambda: lazy.position is not None, "the start to be resolved")
        await bus.publish("plans", b"new")
        got = await asyncio.wait_for(task, HANG_GUARD)
        assert got.payload == b"new"
    finally:
        await bus.close()
        redis_server.start()


async def test_close_during_backoff_ends_the_subscription(
        redis_server: RedisServer, redis_url: str) -> None:
    bus = RedisStreamsControlBus(redis_url, backoff_initial=1.0, backoff_max=2.0)
    try:
        sub = await bus.subscribe("plans")
        task = asyncio.create_task(anext(sub))
        redis_server.stop()
        await wait_until(lambda: bus.read_failures >= 1, "the reader to back off")
        await bus.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(task, HANG_GUARD)
    finally:
        await bus.close()
        redis_server.start()


async def test_the_epoch_lives_in_redis_and_changes_when_the_data_is_lost(
        redis_url: str, raw: Redis) -> None:
    first = RedisStreamsControlBus(redis_url)
    try:
        epoch = await first.epoch("rebalancing")
        assert await raw.get("qmtl:controlbus:epoch:rebalancing") == epoch.encode()
        await raw.delete("qmtl:controlbus:epoch:rebalancing", "qmtl:controlbus:rebalancing")
    finally:
        await first.close()
    again = RedisStreamsControlBus(redis_url)
    try:
        assert await again.epoch("rebalancing") != epoch
    finally:
        await again.close()


async def test_the_epoch_of_an_unreachable_redis_is_a_controlbus_error() -> None:
    bus = RedisStreamsControlBus(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    try:
        with pytest.raises(ControlBusError, match="epoch"):
            await bus.epoch("rebalancing")
    finally:
        await bus.close()
