"""The in-process bus: sharing by name, counted lifetime, bounded retention, URL parsing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from qmtl.contracts.errors import ConfigError
from qmtl.controlbus import (
    ControlBusError,
    MemoryControlBus,
    RedisStreamsControlBus,
    check_controlbus_url,
    create_controlbus,
)


def unique(prefix: str = "memory://t") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def test_same_name_is_the_same_bus_and_plain_memory_is_default() -> None:
    url = unique()
    a, b = create_controlbus(url), create_controlbus(url)
    other = create_controlbus(unique())
    default = create_controlbus("memory://")
    try:
        assert a is b
        assert a is not other
        assert default is create_controlbus("memory://default")
        assert isinstance(a, MemoryControlBus) and a.url == url
        assert default.url == "memory://default"
    finally:
        for bus in (a, other, default):
            await bus.close()


async def test_positions_are_decimal_counters_per_topic() -> None:
    bus = MemoryControlBus(unique("t"))
    first = await bus.publish("x", b"1")
    second = await bus.publish("x", b"2")
    elsewhere = await bus.publish("y", b"3")

    assert (first.position, first.seq) == ("1", 1)
    assert (second.position, second.seq) == ("2", 2)
    assert (elsewhere.position, elsewhere.seq) == ("1", 1)


async def test_two_owners_do_not_end_each_others_subscriptions() -> None:
    url = unique()
    worldservice_side, gateway_side = create_controlbus(url), create_controlbus(url)
    await worldservice_side.start()
    await gateway_side.start()
    sub = await gateway_side.subscribe("plans")

    await worldservice_side.close()  # one owner shuts down first
    await worldservice_side.publish("plans", b"still open")
    got = await asyncio.wait_for(anext(sub), 10)
    assert got.payload == b"still open"

    await gateway_side.close()  # the last owner really closes it
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(sub), 10)
    with pytest.raises(ControlBusError):
        await gateway_side.start()
    fresh = create_controlbus(url)
    try:
        assert fresh is not gateway_side
        assert await fresh.history("plans") == []
    finally:
        await fresh.close()


async def test_retention_bounds_each_topic_and_counts_what_slow_readers_lost() -> None:
    bus = MemoryControlBus(unique("t"), retention=5)
    slow = bus.subscribe("plans", after="0")
    for i in range(1, 9):
        await bus.publish("plans", f"m{i}".encode())

    assert [m.seq for m in await bus.history("plans")] == [4, 5, 6, 7, 8]
    first = await anext(slow)
    # seqs 1..3 fell out of the 5-message window before the reader looked.
    assert first.seq == 4
    assert bus.dropped == 3


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError, match="retention"):
        MemoryControlBus("x", retention=0)


async def test_retention_from_the_url_and_conflicts_are_config_errors() -> None:
    url = unique()
    bus = create_controlbus(url + "?retention=3")
    try:
        assert isinstance(bus, MemoryControlBus) and bus.retention == 3
        assert create_controlbus(url) is bus  # no explicit retention: the existing bus
        with pytest.raises(ConfigError, match="retention"):
            create_controlbus(url + "?retention=4")
    finally:
        await bus.close()
    with pytest.raises(ConfigError, match="retention"):
        create_controlbus(unique() + "?retention=lots")
    with pytest.raises(ConfigError, match="retention"):
        create_controlbus(unique() + "?retention=0")


async def test_create_controlbus_picks_redis_for_redis_urls() -> None:
    bus = create_controlbus("redis://127.0.0.1:1/0?retention=7")
    other = create_controlbus("rediss://127.0.0.1:1/0")
    assert isinstance(bus, RedisStreamsControlBus) and bus.retention == 7
    assert bus.url == "redis://127.0.0.1:1/0"  # our parameter is not passed to redis-py
    assert isinstance(other, RedisStreamsControlBus) and other.retention == 100_000


@pytest.mark.parametrize("url", ["kafka://broker:9092", "postgresql://x/y"])
def test_unknown_schemes_are_config_errors_naming_the_scheme(url: str) -> None:
    scheme = url.split(":", 1)[0]
    with pytest.raises(ConfigError, match=f"scheme '{scheme}'") as info:
        create_controlbus(url)
    assert info.value.code == "E_CONFIG_INVALID"
    assert info.value.context["scheme"] == scheme


def test_a_url_without_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no scheme"):
        create_controlbus("localhost:6379")


@pytest.mark.parametrize(
    ("url", "message"),
    [("kafka://broker:9092", "not supported"), ("localhost:6379", "not supported"),
     ("redis://h:1/0?retention=0", "retention"), ("memory://x?retention=abc", "retention")],
)
def test_check_controlbus_url_validates_without_creating_a_bus(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_controlbus_url(url)
    assert check_controlbus_url(" redis://h:1/0?retention=5 ") == "redis://h:1/0?retention=5"
    assert check_controlbus_url("memory://checked-only") == "memory://checked-only"


async def test_a_new_memory_bus_is_a_new_epoch() -> None:
    # Its numbering restarts at 1, so a seq of the closed bus means nothing on the new one.
    name = f"memory://epoch-{uuid.uuid4().hex}"
    old = create_controlbus(name)
    epoch = await old.epoch("t")
    await old.close()
    assert await create_controlbus(name).epoch("t") != epoch
