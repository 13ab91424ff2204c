"""events(): reconnect and resume against real gateways that are restarted.

* Redis Streams ControlBus: events published while the gateway is down are replayed after
  it comes back (``recovered`` true), none twice.
* ``qmtl up`` restarted (in-process bus, history lost): the gateway says ``recovered`` false
  and the stream still yields the new events although their ``seq`` restarted.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from qmtl.sdk import (
    EventStream,
    EventStreamError,
    GatewayClient,
    GatewayHTTPError,
    GatewayUnavailable,
    RebalancingEvent,
    ReconnectPolicy,
)
from tests._servers import free_port
from tests.cli._up import QmtlUp

from .conftest import Stack, book

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.5, max_attempts=400)


async def _take(stream: EventStream, run_id: str, count: int,
                timeout: float = 30.0) -> list[RebalancingEvent]:
    events: list[RebalancingEvent] = []

    async def collect() -> None:
        async for event in stream:
            if event.run_id == run_id:
                events.append(event)
                if len(events) == count:
                    return

    await asyncio.wait_for(collect(), timeout)
    return events


def _run() -> str:
    return f"resume-{uuid.uuid4().hex[:8]}"


@pytest.mark.redis
@pytest.mark.e2e
async def test_resume_after_gateway_restart_replays_missed_events(redis_stack: Stack) -> None:
    first, missed, live = _run(), _run(), _run()
    async with GatewayClient(redis_stack.gateway_url, reconnect=FAST) as client:
        stream = client.events()
        await stream.subscribed()
        await client.apply(book(), run_id=first)
        seen = await _take(stream, first, 2)
        last_seq = stream.last_seq
        assert last_seq == max(e.seq for e in seen)

        await redis_stack.astop_gateway()
        # Applied straight on the WorldService while no gateway relays anything.
        async with httpx.AsyncClient(base_url=redis_stack.worldservice.url) as ws:
            response = await ws.post("/rebalancing/apply", json={**book(), "run_id": missed})
            assert response.status_code == 200, response.text
        await redis_stack.astart_gateway()

        replayed = await _take(stream, missed, 2)
        await client.apply(book(), run_id=live)
        after = await _take(stream, live, 2)
        await stream.aclose()

    resubscription = stream.subscriptions[-1]
    assert resubscription.resubscription and resubscription.since_seq == last_seq
    assert resubscription.recovered is True and stream.recovered
    assert stream.reconnects >= 1
    assert {e.world_id for e in replayed} == {"wa", "wb"}
    seqs = [e.seq for e in (*seen, *replayed, *after)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    ids = [e.id for e in (*seen, *replayed, *after)]
    assert len(set(ids)) == len(ids)


async def _until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.e2e
async def test_qmtl_up_restart_is_reported_as_not_recovered(tmp_path: Path) -> None:
    up = QmtlUp(tmp_path).start()
    received: list[RebalancingEvent] = []
    first, later = _run(), _run()
    try:
        async with GatewayClient(up.gateway_url, reconnect=FAST) as client:
            stream = client.events()
            await stream.subscribed()

            async def pump() -> None:
                async for event in stream:
                    received.append(event)

            reader = asyncio.create_task(pump())
            await client.apply(book(), run_id=first)
            await _until(lambda: sum(e.run_id == first for e in received) == 2, "first events")
            before = stream.last_seq
            assert before is not None

            await asyncio.to_thread(up.stop)
            await asyncio.to_thread(up.start)  # same ports, same data dir, fresh bus
            # The new bus has no history: apply only once the stream is back.
            await _until(lambda: len(stream.subscriptions) >= 2, "the resubscription")
            await client.apply(book(), run_id=later)
            await _until(lambda: sum(e.run_id == later for e in received) == 2, "new events")
            await stream.aclose()
            await reader
    finally:
        assert up.stop() == 0
    again = stream.subscriptions[-1]
    assert again.resubscription and again.since_seq == before
    assert again.recovered is False and not stream.recovered
    # The restarted bus numbers from 1 again: the events are yielded all the same.
    events = [e for e in received if e.run_id == later]
    assert {e.world_id for e in events} == {"wa", "wb"}
    assert min(e.seq for e in events) <= before


@pytest.mark.e2e
async def test_qmtl_up_restart_with_events_before_the_resume_is_a_new_epoch(
    tmp_path: Path,
) -> None:
    """The restarted bus numbers from 1 again and reaches the client's seq before it comes
    back: only the epoch tells the two numberings apart (issue 10, item 4)."""
    up = QmtlUp(tmp_path).start()
    first, later = _run(), _run()
    between = [_run(), _run()]
    try:
        async with GatewayClient(up.gateway_url, reconnect=FAST) as client:
            stream = client.events()
            await stream.subscribed()
            await client.apply(book(), run_id=first)
            await _take(stream, first, 2)  # seq 1, 2 of the first run
            before, old_epoch = stream.last_seq, stream.epoch
            assert before == 2 and old_epoch == stream.subscriptions[0].epoch

            # Nobody reads the stream now, so it resubscribes only when read again.
            await asyncio.to_thread(up.stop)
            await asyncio.to_thread(up.start)
            for run in between:
                await client.apply(book(), run_id=run)  # seq 1..4 of the new run
            await client.apply(book(), run_id=later)

            received: list[RebalancingEvent] = []

            async def collect() -> None:
                async for event in stream:
                    received.append(event)
                    if sum(e.run_id == later for e in received) == 2:
                        return

            await asyncio.wait_for(collect(), 60)
            await stream.aclose()
    finally:
        assert up.stop() == 0
    again = stream.subscriptions[-1]
    assert again.resubscription and again.since_seq == before
    assert again.epoch is not None and again.epoch != old_epoch
    assert again.recovered is False and not stream.recovered
    # Every event of the new run, the ones numbered at or below ``before`` included.
    assert [(e.run_id, e.seq) for e in received] == [
        (run, seq) for seq, run in enumerate([*(r for r in between for _ in (0, 1)),
                                              later, later], start=1)]
    assert stream.epoch == again.epoch


async def test_unreachable_gateway_gives_up_after_max_attempts() -> None:
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=3)
    async with GatewayClient(f"http://127.0.0.1:{free_port()}", reconnect=policy) as client:
        stream = client.events()
        with pytest.raises(GatewayUnavailable, match="after 3 attempts"):
            await stream.subscribed()


@pytest.mark.e2e
async def test_a_refused_token_is_not_retried(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    await asyncio.to_thread(stack.worldservice.start)
    await stack.astart_gateway(auth={"tokens": ["right"]})
    try:
        async with GatewayClient(stack.gateway_url, token="wrong", reconnect=FAST) as client:
            with pytest.raises(GatewayHTTPError) as info:
                await client.events().subscribed()
        assert info.value.code == "E_UNAUTHORIZED"
        async with GatewayClient(stack.gateway_url, token="right") as client:
            assert (await client.events().subscribed()).resubscription is False
    finally:
        await asyncio.to_thread(stack.close)


@pytest.mark.e2e
async def test_a_refused_subscription_raises(stack: Stack) -> None:
    async with GatewayClient(stack.gateway_url) as client:
        stream = client.events(world_ids=[" "])
        with pytest.raises(EventStreamError) as info:
            await stream.subscribed()
    assert info.value.code == "E_WS_INVALID_SUBSCRIBE"


def test_reconnect_policy_is_bounded() -> None:
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=1.0, multiplier=2.0)
    assert [policy.delay(k) for k in (1, 2, 3, 4, 5, 10)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for bad in ({"max_attempts": 0}, {"multiplier": 0.5}, {"initial_delay": -1.0}):
        kwargs: dict[str, Any] = bad
        with pytest.raises(ValueError):
            ReconnectPolicy(**kwargs)
