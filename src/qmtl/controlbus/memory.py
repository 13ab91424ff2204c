"""The in-process ControlBus: one bounded deque per topic, shared by name within a process.

``create_controlbus("memory://<name>")`` returns the same :class:`MemoryControlBus` for the
same name (``memory://`` is ``"default"``), so an embedded WorldService and Gateway in one
process publish and consume on one bus. Positions are the decimal strings of a per-topic
counter starting at 1; ``seq`` is that counter.

Concurrency: the bus is safe within ONE event loop (every method runs without awaiting
between reading and changing state). It is not thread-safe; do not share it between loops
or threads.

Lifetime: ``start()``/``close()`` are counted so that two owners of a shared bus do not end
each other's subscriptions — the bus really closes when every ``start()`` has been matched
by a ``close()`` (a bus that was never started closes at the first ``close()``). A closed
bus leaves the registry (the next ``create_controlbus`` with that name gets a new, empty
bus) and refuses ``start()`` and ``publish()`` with :class:`ControlBusError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque

from qmtl.contracts import ComponentHealth

from .base import BusMessage, ControlBus, ControlBusError, Subscription, check_limit, check_topic

__all__ = ["DEFAULT_MEMORY_RETENTION", "MemoryControlBus", "get_memory_bus"]

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_RETENTION = 10_000

_REGISTRY: dict[str, MemoryControlBus] = {}


def get_memory_bus(name: str = "default", *, retention: int | None = None) -> MemoryControlBus:
    """The process-wide bus called ``name``, created on first use.

    Raises:
        ValueError: ``retention`` differs from the retention the existing bus was made with.
    """
    bus = _REGISTRY.get(name)
    if bus is None:
        bus = MemoryControlBus(name, retention=retention or DEFAULT_MEMORY_RETENTION)
        _REGISTRY[name] = bus
    elif retention is not None and retention != bus.retention:
        raise ValueError(
            f"memory bus {name!r} already exists with retention={bus.retention}, "
            f"not {retention}"
        )
    return bus


def _parse_position(after: str | None, *, name: str = "after") -> int:
    if after is None:
        return 0
    if not isinstance(after, str) or not after.isdecimal() or not after.isascii():
        raise ValueError(
            f"{name}={after!r} is not a position of the memory bus (a decimal counter)"
        )
    return int(after)


class _Topic:
    """Retained messages of one topic (consecutive seqs) and the subscribers waiting on it."""

    __slots__ = ("last_seq", "messages", "waiters")

    def __init__(self, retention: int) -> None:
        self.messages: deque[BusMessage] = deque(maxlen=retention)
        self.last_seq = 0
        self.waiters: set[asyncio.Event] = set()

    def after(self, seq: int) -> itertools.islice[BusMessage]:
        """Retained messages with a seq above ``seq``, oldest first."""
        if not self.messages:
            return itertools.islice(self.messages, 0)
        start = max(0, seq + 1 - self.messages[0].seq)
        return itertools.islice(self.messages, start, None)

    def wake(self) -> None:
        for event in self.waiters:
            event.set()


class MemoryControlBus(ControlBus):
    """Bounded, in-process topics; subscribers wake on publish."""

    def __init__(self, name: str = "default", *,
                 retention: int = DEFAULT_MEMORY_RETENTION) -> None:
        if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
            raise ValueError(f"retention must be an integer >= 1, got {retention!r}")
        self.name = name
        self.url = f"memory://{name}"
        self.retention = retention
        self.dropped = 0  # messages a slow subscriber lost to retention (logged as well)
        self._topics: dict[str, _Topic] = {}
        self._starts = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _topic(self, topic: str) -> _Topic:
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic(self.retention)
        return state

    async def start(self) -> None:
        if self._closed:
            raise ControlBusError(f"{self.url} is closed; create a new bus")
        self._starts += 1

    async def close(self) -> None:
        if self._closed:
            return
        if self._starts > 1:
            self._starts -= 1
            return
        self._closed = True
        self._starts = 0
        if _REGISTRY.get(self.name) is self:
            del _REGISTRY[self.name]
        for state in self._topics.values():
            state.wake()
        logger.debug("memory bus closed", extra={"bus": self.url})

    async def publish(self, topic: str, payload: bytes) -> BusMessage:
        check_topic(topic)
        if self._closed:
            raise ControlBusError(f"{self.url} is closed")
        state = self._topic(topic)
        state.last_seq += 1
        message = BusMessage(topic=topic, position=str(state.last_seq), seq=state.last_seq,
                             payload=bytes(payload))
        state.messages.append(message)
        state.wake()
        return message

    def subscribe(self, topic: str, *, after: str | None = None) -> Subscription:
        check_topic(topic)
        start = (self._topic(topic).last_seq if after is None
                 else _parse_position(after))
        return _MemorySubscription(self, topic, start)

    async def history(self, topic: str, *, after: str | None = None,
                      limit: int = 1000) -> list[BusMessage]:
        check_topic(topic)
        check_limit(limit)
        start = _parse_position(after)
        state = self._topics.get(topic)
        if state is None or limit == 0:
            return []
        return list(state.after(start))[-limit:]

    def position_for_seq(self, seq: int) -> str:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError(f"seq must be an integer >= 0, got {seq!r}")
        return str(seq)

    async def health(self) -> ComponentHealth:
        if self._closed:
            return ComponentHealth(status="down", detail="memory bus is closed",
                                   backend="memory")
        return ComponentHealth(status="ok", backend="memory")


class _MemorySubscription(Subscription):
    def __init__(self, bus: MemoryControlBus, topic: str, after_seq: int) -> None:
        self.topic = topic
        self._bus = bus
        self._last = after_seq
        self._closed = False
        self._event: asyncio.Event | None = None

    @property
    def position(self) -> str:
        return str(self._last)

    async def ready(self) -> Subscription:
        return self  # the start position was fixed by subscribe()

    async def aclose(self) -> None:
        self._closed = True
        if self._event is not None:
            self._event.set()

    async def __anext__(self) -> BusMessage:
        state = self._bus._topic(self.topic)
        while True:
            if self._closed or self._bus.closed:
                raise StopAsyncIteration
            message = next(state.after(self._last), None)
            if message is not None:
                skipped = message.seq - self._last - 1
                if skipped > 0:
                    self._bus.dropped += skipped
                    logger.warning(
                        "subscriber fell behind the memory bus retention; %d messages lost",
                        skipped, extra={"topic": self.topic, "after": self._last},
                    )
                self._last = message.seq
                return message
            # A fresh Event per wait binds to whichever loop is iterating right now.
            event = self._event = asyncio.Event()
            state.waiters.add(event)
            try:
                await event.wait()
            finally:
                state.waiters.discard(event)
                self._event = None
