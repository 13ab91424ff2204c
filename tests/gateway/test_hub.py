"""Unit tests of the event hub: bounded history, resume and fan-out (in-memory; the
WebSocket tests run the same hub behind real connections)."""

from __future__ import annotations

import asyncio
import json

import pytest

from qmtl.gateway.hub import CONTROL_ALLOWANCE, EventHub, RelayedEvent, Subscriber, SubscriberClosed


def event(seq: int, world: str = "w1") -> RelayedEvent:
    return RelayedEvent(seq=seq, world_id=world, event_id=f"e{seq}",
                        text=json.dumps({"seq": seq, "world": world}))


def subscribed(recovered: bool, epoch: str) -> str:
    return json.dumps({"type": "subscribed", "recovered": recovered})


def drain(sub: Subscriber) -> list[dict[str, object]]:
    out = []
    while sub._items:
        text, _ = sub._items.popleft()
        out.append(json.loads(text))
    return out


async def test_replay_after_since_seq_then_live_without_duplicates() -> None:
    hub = EventHub(history_size=10, client_queue_size=10)
    for seq in (1, 2, 3):
        hub.publish(event(seq))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=1, epoch=hub.epoch,
                  subscribed=subscribed) is True
    hub.publish(event(4))
    messages = drain(sub)
    assert messages[0] == {"type": "subscribed", "recovered": True}
    assert [m["seq"] for m in messages[1:]] == [2, 3, 4]


async def test_recovered_false_when_events_after_since_seq_were_evicted() -> None:
    hub = EventHub(history_size=3, client_queue_size=10)
    for seq in range(1, 6):  # history keeps 3, 4, 5; 1 and 2 are gone
        hub.publish(event(seq))
    assert hub.unavailable_through == 2
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=1, epoch=hub.epoch,
                  subscribed=subscribed) is False
    assert [m.get("seq") for m in drain(sub)[1:]] == [3, 4, 5]
    sub2 = hub.new_subscriber()
    # since_seq=2: everything after 2 (3, 4, 5) is still there.
    assert hub.subscribe(sub2, world_ids=None, since_seq=2, epoch=hub.epoch,
                  subscribed=subscribed) is True


async def test_since_seq_newer_than_anything_known_replays_everything_unrecovered() -> None:
    hub = EventHub(history_size=5, client_queue_size=10)
    for seq in (10, 20):
        hub.publish(event(seq))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=99, epoch=hub.epoch,
                  subscribed=subscribed) is False
    assert [m.get("seq") for m in drain(sub)[1:]] == [10, 20]


async def test_no_since_seq_means_live_only() -> None:
    hub = EventHub(history_size=5, client_queue_size=10)
    hub.publish(event(1))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=None, epoch=hub.epoch,
                  subscribed=subscribed) is False
    hub.publish(event(2))
    assert [m.get("seq") for m in drain(sub)[1:]] == [2]


async def test_unloaded_history_is_not_recoverable() -> None:
    hub = EventHub(history_size=5, client_queue_size=10)
    hub.mark_unavailable_through(41)
    hub.publish(event(42))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=40, epoch=hub.epoch,
                  subscribed=subscribed) is False
    sub2 = hub.new_subscriber()
    assert hub.subscribe(sub2, world_ids=None, since_seq=41, epoch=hub.epoch,
                  subscribed=subscribed) is True


async def test_a_since_seq_from_another_epoch_is_not_recovered_and_replays_everything() -> None:
    # A restarted in-process bus numbers from 1 again: seq 1 of the old run is not seq 1 now.
    hub = EventHub(history_size=10, client_queue_size=10)
    hub.epoch = "run-2"
    for seq in (1, 2, 3):
        hub.publish(event(seq))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=2, epoch="run-1",
                         subscribed=subscribed) is False
    assert [m.get("seq") for m in drain(sub)[1:]] == [1, 2, 3]


async def test_a_since_seq_without_epoch_cannot_be_placed_so_it_is_not_recovered() -> None:
    hub = EventHub(history_size=10, client_queue_size=10)
    for seq in (1, 2, 3):
        hub.publish(event(seq))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=1, epoch=None,
                         subscribed=subscribed) is False
    assert [m.get("seq") for m in drain(sub)[1:]] == [2, 3]  # the best guess


async def test_the_subscribed_answer_names_the_hub_epoch() -> None:
    hub = EventHub(history_size=10, client_queue_size=10)
    hub.epoch = "e-42"
    sub = hub.new_subscriber()
    hub.subscribe(sub, world_ids=None, since_seq=None, epoch=None,
                  subscribed=lambda recovered, epoch: json.dumps([recovered, epoch]))
    assert drain(sub) == [[False, "e-42"]]


async def test_world_filter_applies_to_replay_and_live() -> None:
    hub = EventHub(history_size=10, client_queue_size=10)
    hub.publish(event(1, "w1"))
    hub.publish(event(2, "w2"))
    sub = hub.new_subscriber()
    hub.subscribe(sub, world_ids=["w2"], since_seq=0, epoch=hub.epoch,
                  subscribed=subscribed)
    hub.publish(event(3, "w1"))
    hub.publish(event(4, "w2"))
    assert [m.get("seq") for m in drain(sub)[1:]] == [2, 4]


async def test_stale_or_repeated_seq_is_ignored() -> None:
    hub = EventHub(history_size=10, client_queue_size=10)
    assert hub.publish(event(5)) is True
    assert hub.publish(event(5)) is False
    assert hub.publish(event(4)) is False
    assert [e.seq for e in hub.history()] == [5]


async def test_a_full_outbox_closes_only_that_subscriber() -> None:
    hub = EventHub(history_size=100, client_queue_size=2)
    overflowed: list[Subscriber] = []
    hub.on_overflow = overflowed.append
    slow, fast = hub.new_subscriber(), hub.new_subscriber()
    hub.subscribe(slow, world_ids=None, since_seq=None, epoch=hub.epoch,
                  subscribed=subscribed)
    hub.subscribe(fast, world_ids=None, since_seq=None, epoch=hub.epoch,
                  subscribed=subscribed)
    received = [await fast.get()]  # "subscribed"
    for seq in range(1, 6):
        hub.publish(event(seq))
        received.append(await fast.get())  # the fast one keeps up
    assert [json.loads(t).get("seq") for t in received[1:]] == [1, 2, 3, 4, 5]
    assert overflowed == [slow]
    assert slow.close_reason == "overflow"
    assert hub.subscriber_count == 1
    with pytest.raises(SubscriberClosed):
        await slow.get()


async def test_get_waits_for_a_message_and_close_wakes_it() -> None:
    hub = EventHub(history_size=10, client_queue_size=10)
    sub = hub.new_subscriber()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    hub.subscribe(sub, world_ids=None, since_seq=None, epoch=hub.epoch,
                  subscribed=subscribed)
    assert json.loads(await waiter) == {"type": "subscribed", "recovered": False}
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(SubscriberClosed) as info:
        await waiter
    assert info.value.reason == "shutdown"


async def test_repeated_replays_to_a_client_that_does_not_read_are_bounded() -> None:
    # Issue 10: 10,000 x subscribe(since_seq=0) grew the gateway by 500 MB.
    hub = EventHub(history_size=50, client_queue_size=8)
    for seq in range(1, 51):
        hub.publish(event(seq))
    sub = hub.new_subscriber()
    bound = 50 + 8 + CONTROL_ALLOWANCE
    assert sub.max_pending == bound
    peak = 0
    for _ in range(10_000):
        hub.subscribe(sub, world_ids=None, since_seq=0, epoch=hub.epoch, subscribed=subscribed)
        peak = max(peak, sub.pending)
    assert peak <= bound
    assert sub.close_reason == "overflow" and "unread" in sub.close_detail
    assert sub.pending == 0 and hub.subscriber_count == 0  # its outbox is freed at once
    with pytest.raises(SubscriberClosed):
        await sub.get()


async def test_one_full_replay_and_live_events_fit_in_the_outbox() -> None:
    hub = EventHub(history_size=50, client_queue_size=8)
    for seq in range(1, 51):
        hub.publish(event(seq))
    sub = hub.new_subscriber()
    assert hub.subscribe(sub, world_ids=None, since_seq=0, epoch=hub.epoch,
                         subscribed=subscribed) is True
    for seq in range(51, 59):
        hub.publish(event(seq))
    for _ in range(CONTROL_ALLOWANCE - 1):  # "subscribed" was the first control reply
        assert sub.push_control('{"type": "pong"}')
    assert not sub.closed
    assert [m.get("seq") for m in drain(sub)[1:59]] == list(range(1, 59))


async def test_unread_pings_are_bounded() -> None:
    sub = Subscriber(max_live=4)
    accepted = sum(sub.push_control('{"type": "pong"}') for _ in range(10_000))
    assert accepted == 4 + CONTROL_ALLOWANCE and sub.close_reason == "overflow"


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        EventHub(history_size=0, client_queue_size=1)
    with pytest.raises(ValueError):
        Subscriber(max_live=0)
    with pytest.raises(ValueError):
        Subscriber(max_live=5, max_pending=4)
