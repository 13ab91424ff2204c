"""ControlBus contract: the same behaviour from the in-process and the Redis Streams backend."""

from __future__ import annotations

import asyncio

import pytest

from qmtl.controlbus import BusMessage, ControlBus, ControlBusError, Subscription

from .conftest import MakeBus

HANG_GUARD = 20.0  # seconds; only stops a broken test from hanging, asserts nothing on speed


async def take(sub: Subscription, n: int) -> list[BusMessage]:
    async def collect() -> list[BusMessage]:
        got: list[BusMessage] = []
        async for message in sub:
            got.append(message)
            if len(got) == n:
                break
        return got

    return await asyncio.wait_for(collect(), HANG_GUARD)


def payloads(messages: list[BusMessage]) -> list[bytes]:
    return [m.payload for m in messages]


async def publish_many(bus: ControlBus, topic: str, names: list[str]) -> list[BusMessage]:
    return [await bus.publish(topic, name.encode()) for name in names]


async def test_subscribers_get_messages_in_publish_order(bus: ControlBus) -> None:
    sub = await bus.subscribe("plans")
    sent = await publish_many(bus, "plans", [f"m{i}" for i in range(20)])

    got = await take(sub, 20)

    assert got == sent
    assert payloads(got) == [f"m{i}".encode() for i in range(20)]
    seqs = [m.seq for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    assert all(m.topic == "plans" for m in got)
    assert sub.position == sent[-1].position


async def test_subscribe_without_after_starts_at_subscribe_time(bus: ControlBus) -> None:
    await publish_many(bus, "plans", ["old-1", "old-2"])
    sub = await bus.subscribe("plans")
    # Published after subscribe() returned but before anyone iterates: must not be missed.
    await publish_many(bus, "plans", ["new-1", "new-2"])

    assert payloads(await take(sub, 2)) == [b"new-1", b"new-2"]


async def test_subscribe_on_an_empty_topic_then_publish(bus: ControlBus) -> None:
    sub = await bus.subscribe("empty-so-far")
    await bus.publish("empty-so-far", b"first")

    assert payloads(await take(sub, 1)) == [b"first"]


async def test_after_resumes_right_after_that_position(bus: ControlBus) -> None:
    sent = await publish_many(bus, "plans", ["a", "b", "c", "d"])

    sub = await bus.subscribe("plans", after=sent[1].position)
    first = await take(sub, 2)
    await bus.publish("plans", b"e")
    later = await take(sub, 1)

    assert payloads(first) == [b"c", b"d"]
    assert payloads(later) == [b"e"]


async def test_position_for_seq_gives_back_the_position(bus: ControlBus) -> None:
    sent = await publish_many(bus, "plans", ["a", "b", "c"])

    assert [bus.position_for_seq(m.seq) for m in sent] == [m.position for m in sent]
    sub = await bus.subscribe("plans", after=bus.position_for_seq(sent[0].seq))
    assert payloads(await take(sub, 2)) == [b"b", b"c"]
    with pytest.raises(ValueError, match="seq"):
        bus.position_for_seq(-1)


async def test_history_returns_the_newest_oldest_first(bus: ControlBus) -> None:
    sent = await publish_many(bus, "plans", ["a", "b", "c", "d", "e"])

    assert await bus.history("plans") == sent
    assert payloads(await bus.history("plans", limit=3)) == [b"c", b"d", b"e"]
    assert payloads(await bus.history("plans", after=sent[1].position)) == [b"c", b"d", b"e"]
    assert payloads(await bus.history("plans", after=sent[1].position, limit=2)) == [b"d", b"e"]
    assert await bus.history("plans", after=sent[-1].position) == []
    assert await bus.history("plans", limit=0) == []
    assert await bus.history("never-published") == []


async def test_history_rejects_bad_arguments(bus: ControlBus) -> None:
    with pytest.raises(ValueError, match="limit"):
        await bus.history("plans", limit=-1)
    with pytest.raises(ValueError, match="after"):
        await bus.history("plans", after="not a position")
    with pytest.raises(ValueError, match="after"):
        bus.subscribe("plans", after="not a position")
    with pytest.raises(ValueError, match="topic"):
        await bus.publish("", b"x")


async def test_topics_are_separate(bus: ControlBus) -> None:
    sub_b = await bus.subscribe("b")
    await bus.publish("a", b"for-a")
    await bus.publish("b", b"for-b")

    assert payloads(await take(sub_b, 1)) == [b"for-b"]
    assert payloads(await bus.history("a")) == [b"for-a"]


async def test_every_concurrent_subscriber_gets_everything(make_bus: MakeBus) -> None:
    buses = [make_bus() for _ in range(4)]
    for b in buses:
        await b.start()
    publisher, consumers = buses[0], buses[1:]
    subs = [await c.subscribe("plans") for c in consumers for _ in range(2)]
    names = [f"m{i}" for i in range(50)]

    async def publish() -> None:
        for name in names:
            await publisher.publish("plans", name.encode())
            await asyncio.sleep(0)  # interleave with the readers

    publishing = asyncio.create_task(publish())
    results = await asyncio.gather(*(take(s, 50) for s in subs))
    await publishing

    assert len(results) == 6
    for got in results:
        assert payloads(got) == [n.encode() for n in names]


async def test_close_ends_every_subscription(bus: ControlBus) -> None:
    subs = [await bus.subscribe("plans") for _ in range(3)]

    async def drain(sub: Subscription) -> list[BusMessage]:
        return [m async for m in sub]

    tasks = [asyncio.create_task(drain(s)) for s in subs]
    only = await bus.publish("plans", b"only")

    async def delivered() -> None:
        while any(s.position != only.position for s in subs):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(delivered(), HANG_GUARD)  # every reader has yielded "only"
    await bus.close()

    results = await asyncio.wait_for(asyncio.gather(*tasks), HANG_GUARD)
    assert [payloads(r) for r in results] == [[b"only"]] * 3


async def test_aclose_ends_only_that_subscription(bus: ControlBus) -> None:
    closing, staying = await bus.subscribe("plans"), await bus.subscribe("plans")

    async def drain(sub: Subscription) -> list[BusMessage]:
        return [m async for m in sub]

    task = asyncio.create_task(drain(closing))
    await asyncio.sleep(0.05)
    await closing.aclose()
    assert await asyncio.wait_for(task, HANG_GUARD) == []

    await bus.publish("plans", b"still here")
    assert payloads(await take(staying, 1)) == [b"still here"]


async def test_publish_after_close_raises_and_health_says_down(bus: ControlBus) -> None:
    assert (await bus.health()).status == "ok"
    await bus.close()
    await bus.close()  # idempotent

    with pytest.raises(ControlBusError):
        await bus.publish("plans", b"late")
    health = await bus.health()
    assert health.status == "down" and health.detail


async def test_cancelling_the_consumer_task_propagates(bus: ControlBus) -> None:
    sub = await bus.subscribe("plans")
    task = asyncio.create_task(take(sub, 1))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The bus is still usable by others after a consumer was cancelled mid-wait.
    other = await bus.subscribe("plans")
    await bus.publish("plans", b"after-cancel")
    assert payloads(await take(other, 1)) == [b"after-cancel"]


async def test_every_reader_of_one_numbering_sees_one_epoch(make_bus: MakeBus) -> None:
    # The same seq means the same message for every reader, so they share the epoch.
    first, second = make_bus(), make_bus()
    await first.start()
    await second.start()
    epoch = await first.epoch("t")
    assert epoch and await first.epoch("t") == epoch
    assert await second.epoch("t") == epoch
