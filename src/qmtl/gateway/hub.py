"""WebSocket fan-out: a bounded history of relayed events and one bounded outbox per client.

The hub never awaits. :meth:`EventHub.publish` appends to the history and offers the event
to every matching subscriber with a non-blocking push, so a client that stops reading can
only fill its own outbox; when that outbox is full the client is marked *overflowed* and
its connection is closed (1013) — the publisher and the other clients never wait for it.

Every outbox is bounded twice: at most ``client_queue_size`` live events, and at most
``history_size + client_queue_size + CONTROL_ALLOWANCE`` messages of any kind (one full
replay, the live bound, and that many unread control replies). A client that keeps asking
(``subscribe`` with ``since_seq: 0``, ``ping``) without reading the answers fills it and is
closed the same way, so its requests cannot grow the gateway's memory.

:meth:`EventHub.subscribe` takes the replay snapshot and registers the subscriber in one
synchronous step, so replayed and live events neither overlap nor leave a gap.

Resume (SPEC 10): a ``seq`` means something only within its ``epoch`` (the ControlBus
numbering it came from; a restarted in-process bus numbers from 1 again under a new epoch).
``recovered`` is true only when the client names this hub's epoch and every event after its
``since_seq`` is still in the history. ``unavailable_through`` is the highest seq that is
*not* in the history (evicted, or older than what was loaded at start-up).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["CONTROL_ALLOWANCE", "EventHub", "RelayedEvent", "Subscriber", "SubscriberClosed"]

logger = logging.getLogger(__name__)

CONTROL_ALLOWANCE = 64
"""Unread control replies (``subscribed``, ``pong``, ``error``) an outbox holds beyond one
full replay and the live bound."""


@dataclass(frozen=True, slots=True)
class RelayedEvent:
    """One event as sent to clients: its relay ``seq``, its world and the encoded message."""

    seq: int
    world_id: str
    event_id: str
    text: str


class SubscriberClosed(Exception):
    """The subscriber's outbox was closed; ``reason`` is ``overflow`` or ``shutdown``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscriber:
    """The outbox of one WebSocket connection.

    A live event is refused once ``max_live`` of them are waiting; any message is refused
    once ``max_pending`` messages of any kind are waiting. A refusal closes the outbox with
    reason ``overflow`` (``close_detail`` says which bound was hit).
    """

    def __init__(self, *, max_live: int, max_pending: int | None = None,
                 on_close: Callable[[Subscriber], None] | None = None) -> None:
        if max_live < 1:
            raise ValueError(f"max_live must be >= 1, got {max_live}")
        self.max_live = max_live
        self.max_pending = max_pending if max_pending is not None else max_live + CONTROL_ALLOWANCE
        if self.max_pending < max_live:
            raise ValueError(f"max_pending must be >= max_live, got {self.max_pending}")
        self.world_ids: frozenset[str] | None = None
        self._items: deque[tuple[str, bool]] = deque()
        self._live_pending = 0
        self._wakeup = asyncio.Event()
        self.closed_signal = asyncio.Event()
        self._on_close = on_close
        self.close_reason: str | None = None
        self.close_detail = ""

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def matches(self, event: RelayedEvent) -> bool:
        return self.world_ids is None or event.world_id in self.world_ids

    @property
    def pending(self) -> int:
        """Messages waiting to be sent."""
        return len(self._items)

    def push_control(self, text: str) -> bool:
        """Queue a control or replay message; ``False`` (and the subscriber closes) when
        ``max_pending`` messages are already waiting."""
        if self.closed:
            return False
        if len(self._items) >= self.max_pending:
            self.close("overflow", f"{len(self._items)} messages unread; read the replies "
                                   "before asking again")
            return False
        self._items.append((text, False))
        self._wakeup.set()
        return True

    def offer(self, text: str) -> bool:
        """Queue a live event; ``False`` (and the subscriber closes) when the outbox is full."""
        if self.closed:
            return False
        if self._live_pending >= self.max_live or len(self._items) >= self.max_pending:
            self.close("overflow", "fell behind; reconnect with since_seq")
            return False
        self._items.append((text, True))
        self._live_pending += 1
        self._wakeup.set()
        return True

    def close(self, reason: str, detail: str = "") -> None:
        if self.closed:
            return
        self.close_reason = reason
        self.close_detail = detail
        self._items.clear()
        self._live_pending = 0
        self._wakeup.set()
        self.closed_signal.set()
        if self._on_close is not None:
            self._on_close(self)

    async def get(self) -> str:
        """The next message to send; waits for one.

        Raises:
            SubscriberClosed: the outbox was closed (overflow or shutdown).
        """
        return (await self.get_batch(1))[0]

    async def get_batch(self, limit: int) -> list[str]:
        """Up to ``limit`` waiting messages, oldest first; waits for at least one.

        Raises:
            SubscriberClosed: the outbox was closed (overflow or shutdown).
        """
        while True:
            if self.close_reason is not None:
                raise SubscriberClosed(self.close_reason)
            if self._items:
                batch: list[str] = []
                while self._items and len(batch) < limit:
                    text, live = self._items.popleft()
                    self._live_pending -= live
                    batch.append(text)
                return batch
            self._wakeup.clear()
            await self._wakeup.wait()


class EventHub:
    """Bounded history + fan-out to subscribers. Use from one event loop.

    Args:
        history_size: events kept for ``since_seq`` replay (>= 1).
        client_queue_size: live events a client may have waiting before it is dropped.
    """

    def __init__(self, *, history_size: int, client_queue_size: int) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        self.client_queue_size = client_queue_size
        self.history_size = history_size
        self._history: deque[RelayedEvent] = deque(maxlen=history_size)
        self._subscribers: set[Subscriber] = set()
        self.last_seq = 0
        self.unavailable_through = 0
        # Until the relay reads the bus's epoch: an id nobody can hold, so no resume from
        # before that is called recovered.
        self.epoch = uuid.uuid4().hex
        self.on_overflow: Callable[[Subscriber], None] | None = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def history(self) -> tuple[RelayedEvent, ...]:
        return tuple(self._history)

    def new_subscriber(self) -> Subscriber:
        max_pending = self.client_queue_size + self.history_size + CONTROL_ALLOWANCE
        return Subscriber(max_live=self.client_queue_size, max_pending=max_pending,
                          on_close=self._discard)

    def mark_unavailable_through(self, seq: int) -> None:
        """Record that no event with a seq <= ``seq`` can be replayed any more."""
        self.unavailable_through = max(self.unavailable_through, seq)

    def publish(self, event: RelayedEvent) -> bool:
        """Append ``event`` and fan it out; ``False`` (ignored) unless its seq is new."""
        if event.seq <= self.last_seq:
            return False
        if len(self._history) == self._history.maxlen:
            self.mark_unavailable_through(self._history[0].seq)
        self._history.append(event)
        self.last_seq = event.seq
        for subscriber in list(self._subscribers):
            if subscriber.matches(event) and not subscriber.offer(event.text):
                logger.warning("websocket client fell behind (%d events waiting); dropping it",
                               subscriber.max_live, extra={"seq": event.seq})
                if self.on_overflow is not None:
                    self.on_overflow(subscriber)
        return True

    def subscribe(self, subscriber: Subscriber, *, world_ids: Iterable[str] | None,
                  since_seq: int | None, epoch: str | None,
                  subscribed: Callable[[bool, str], str]) -> bool:
        """(Re)subscribe: queue ``subscribed(recovered, epoch)``, then the replay, then go live.

        * No ``since_seq``: live events only (``recovered`` false: nothing was asked for).
        * ``epoch`` is another numbering's (the bus restarted since the client's ``seq``):
          ``recovered`` false, the whole history is replayed — all of it is new to the client.
        * No ``epoch`` (a client older than epochs): the seq cannot be placed, so ``recovered``
          is false; the events after ``since_seq`` are replayed (the best guess).
        * Same epoch: replay = history events after ``since_seq``; ``recovered`` when none was
          evicted. A ``since_seq`` beyond anything known replays the whole history, not
          recovered.

        Returns:
            ``recovered``.
        """
        subscriber.world_ids = frozenset(world_ids) if world_ids is not None else None
        if since_seq is None:
            recovered, replay = False, []
        elif (epoch is not None and epoch != self.epoch) or since_seq > self.last_seq:
            recovered, replay = False, list(self._history)
        else:
            recovered = epoch is not None and since_seq >= self.unavailable_through
            replay = [e for e in self._history if e.seq > since_seq]
        if not subscriber.push_control(subscribed(recovered, self.epoch)):
            return recovered
        for event in replay:
            if subscriber.matches(event) and not subscriber.push_control(event.text):
                return recovered  # it overflowed: closed, never goes live
        self._subscribers.add(subscriber)
        return recovered

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def close(self) -> None:
        """Close every subscriber (gateway shutdown)."""
        for subscriber in list(self._subscribers):
            subscriber.close("shutdown")
        self._subscribers.clear()

    def _discard(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
