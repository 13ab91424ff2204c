"""``/ws`` resume (SPEC 10): ``since_seq`` replay, honest ``recovered``, and the ``epoch`` of
the relay's numbering, with real WebSocket connections to a gateway under uvicorn."""

from __future__ import annotations

from qmtl.controlbus import create_controlbus

from ._events import encoded, planned_event
from ._wsclient import bus_epoch, client, events_until, publish, recv, subscribe
from .conftest import Stack


async def test_resume_with_since_seq_recovers_what_was_missed(stack: Stack) -> None:
    gw = stack.gateway()
    first = [planned_event("w1") for _ in range(2)]
    async with client(gw) as ws:
        epoch = (await subscribe(ws))["epoch"]
        for event in first:
            await publish(stack, encoded(event))
        seen = [await recv(ws), await recv(ws)]
    last_seq = seen[-1]["seq"]
    missed = [planned_event(w) for w in ("w1", "w2", "w1")]
    for event in missed:
        await publish(stack, encoded(event))
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=last_seq, epoch=epoch)
        assert answer["recovered"] is True and answer["epoch"] == epoch
        live = planned_event("w1")
        await publish(stack, encoded(live))
        replay = await events_until(ws, live.id)
    assert [m["id"] for m in replay] == [e.id for e in missed] + [live.id]  # no duplicates
    seqs = [m["seq"] for m in replay]
    assert seqs == sorted(seqs) and seqs[0] > last_seq


async def test_resume_with_world_filter(stack: Stack) -> None:
    gw = stack.gateway()
    events = [planned_event(w) for w in ("w1", "w2", "w1")]
    for event in events:
        await publish(stack, encoded(event))
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=0, world_ids=["w1"], epoch=await bus_epoch(stack))
        assert answer["recovered"] is True
        marker = planned_event("w1")
        await publish(stack, encoded(marker))
        replay = await events_until(ws, marker.id)
    assert [m["id"] for m in replay] == [events[0].id, events[2].id, marker.id]


async def test_resume_is_honest_when_history_was_evicted(stack: Stack) -> None:
    gw = stack.gateway(ws={"history_size": 2})
    events = [planned_event("w1") for _ in range(4)]
    seqs = [(await publish(stack, encoded(e))).seq for e in events]
    epoch = await bus_epoch(stack)
    async with client(gw) as ws:
        marker = planned_event("w1")
        answer = await subscribe(ws, since_seq=seqs[0], epoch=epoch)
        await publish(stack, encoded(marker))
        replay = await events_until(ws, marker.id)
    # seq[1] was evicted (history keeps 2): not everything after seqs[0] can be replayed.
    assert answer["recovered"] is False
    assert [m["id"] for m in replay] == [events[2].id, events[3].id, marker.id]
    # The marker evicted events[2] too; everything after events[2] is still there.
    async with client(gw) as ws:
        assert (await subscribe(ws, since_seq=seqs[1], epoch=epoch))["recovered"] is False
    async with client(gw) as ws:
        assert (await subscribe(ws, since_seq=seqs[2], epoch=epoch))["recovered"] is True


async def test_since_seq_from_the_future_replays_the_whole_history(stack: Stack) -> None:
    gw = stack.gateway()
    events = [planned_event("w1") for _ in range(2)]
    for event in events:
        await publish(stack, encoded(event))
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=10**12)
        replay = [await recv(ws), await recv(ws)]
    assert answer["recovered"] is False
    assert [m["id"] for m in replay] == [e.id for e in events]


async def test_history_is_loaded_from_the_bus_at_start_up(stack: Stack) -> None:
    create_controlbus(stack.bus_url)  # the bus exists before the gateway starts
    events = [planned_event("w1") for _ in range(3)]
    seqs = [(await publish(stack, encoded(e))).seq for e in events]
    gw = stack.gateway(ws={"history_size": 2})
    epoch = await bus_epoch(stack)
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=seqs[0], epoch=epoch)
        replay = [await recv(ws), await recv(ws)]
    assert [m["id"] for m in replay] == [events[1].id, events[2].id]
    assert answer["recovered"] is True  # everything after seqs[0] was loaded
    async with client(gw) as ws:
        # Only the newest two were loaded: seqs[0] itself cannot be replayed.
        assert (await subscribe(ws, since_seq=seqs[0] - 1, epoch=epoch))["recovered"] is False


async def test_subscribed_names_the_epoch_and_another_epoch_is_not_recovered(
    stack: Stack,
) -> None:
    gw = stack.gateway()
    events = [planned_event("w1") for _ in range(3)]
    seqs = [(await publish(stack, encoded(e))).seq for e in events]
    epoch = await bus_epoch(stack)
    async with client(gw) as ws:
        assert (await subscribe(ws))["epoch"] == epoch
    async with client(gw) as ws:
        # The seq of another numbering (a restarted bus): everything here is new to it.
        answer = await subscribe(ws, since_seq=seqs[1], epoch="another-run")
        replay = [await recv(ws) for _ in events]
    assert answer == {"type": "subscribed", "topics": ["rebalancing"], "recovered": False,
                      "epoch": epoch}
    assert [m["id"] for m in replay] == [e.id for e in events]
    async with client(gw) as ws:
        # Without an epoch the seq cannot be placed: the events after it, not recovered.
        answer = await subscribe(ws, since_seq=seqs[1])
        assert answer["recovered"] is False
        assert (await recv(ws))["id"] == events[2].id
