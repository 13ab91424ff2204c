"""The ControlBus interface: an ordered, replayable stream of encoded events per topic.

Backends (``memory.py``, ``redis_streams.py``) implement :class:`ControlBus`; the
WorldService outbox relay publishes through it and the gateway consumes from it, neither
knowing which transport runs underneath. Delivery is at least once: consumers deduplicate
on the CloudEvent ``id``.

Positions are opaque strings chosen by the backend (a counter in memory, the stream entry
id in Redis); ``seq`` is the same position as a strictly increasing integer, so that a
WebSocket client can resume with ``since_seq`` even from another gateway process
(:meth:`ControlBus.position_for_seq` turns it back into a position). A ``seq`` only means
something together with the topic's :meth:`ControlBus.epoch`: a new epoch is a new numbering.

Subscribing::

    sub = await bus.subscribe(topic)      # start position fixed now: nothing published
    async for message in sub:             # after this line is missed
        ...

``async for message in bus.subscribe(topic)`` also works; the start position is then
fixed when the first message is awaited.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from typing import Any

from qmtl.contracts import ComponentHealth

__all__ = ["BusMessage", "ControlBus", "ControlBusError", "Subscription"]


class ControlBusError(ConnectionError):
    """The bus could not publish or read (e.g. Redis is down, or the bus is closed).

    Callers retry; a message whose publish raised this may still have been stored (the
    answer was lost), which at-least-once consumers absorb by deduplicating on event id.
    """


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One entry of a topic: where it is, its integer sequence, and the encoded event."""

    topic: str
    position: str
    seq: int
    payload: bytes


class Subscription(AsyncIterator[BusMessage], ABC):
    """An endless iterator over one topic, ended only by :meth:`aclose` or the bus closing.

    Awaiting the subscription (or :meth:`ready`) fixes its start position; iterating
    without awaiting fixes it at the first ``__anext__``.
    """

    topic: str

    @property
    @abstractmethod
    def position(self) -> str | None:
        """The position of the last message yielded, or the resolved start position
        (``None`` until the start position is resolved)."""

    @abstractmethod
    async def ready(self) -> Subscription:
        """Resolve the start position now and return ``self``.

        Raises:
            ControlBusError: the backend is unreachable while resolving ``after=None``
                (iterating instead retries with backoff).
        """

    @abstractmethod
    async def __anext__(self) -> BusMessage:
        """The next message; waits for one. ``StopAsyncIteration`` once closed."""

    @abstractmethod
    async def aclose(self) -> None:
        """End this subscription (idempotent); a pending ``__anext__`` stops."""

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self.ready().__await__()


class ControlBus(ABC):
    """A topic-based, ordered, replayable event stream."""

    url: str
    _instance_epoch: str | None = None

    @abstractmethod
    async def start(self) -> None:
        """Open connections. Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Close connections and end every open subscription. Idempotent."""

    @abstractmethod
    async def publish(self, topic: str, payload: bytes) -> BusMessage:
        """Append ``payload`` to ``topic``.

        Raises:
            ControlBusError: the message was not stored (safe to retry), or the bus is closed.
        """

    @abstractmethod
    def subscribe(self, topic: str, *, after: str | None = None) -> Subscription:
        """Messages of ``topic`` in order: those after ``after`` (``None`` = only new ones),
        then new ones as they arrive, until the bus closes.

        Transient backend failures are retried inside the iterator (with backoff) and do not
        end it; the iterator resumes after the last message it yielded.

        Raises:
            ValueError: ``after`` is not a position of this backend.
        """

    @abstractmethod
    async def history(self, topic: str, *, after: str | None = None,
                      limit: int = 1000) -> list[BusMessage]:
        """Up to ``limit`` of the newest messages of ``topic`` that come after ``after``
        (all retained messages when ``after`` is ``None``), oldest first.

        Raises:
            ControlBusError: the backend is unreachable.
            ValueError: ``after`` is not a position of this backend, or ``limit`` < 0.
        """

    @abstractmethod
    def position_for_seq(self, seq: int) -> str:
        """The position whose ``seq`` is ``seq`` (for resuming from a client's ``since_seq``).

        Raises:
            ValueError: ``seq`` is negative.
        """

    async def epoch(self, topic: str) -> str:
        """An id of the numbering that ``seq`` belongs to on ``topic``.

        Two messages compare by ``seq`` only when their epochs are equal: the epoch changes
        whenever the numbering can restart (a new in-process bus, a wiped Redis) and stays
        the same while it is durable (every gateway reading one Redis stream). This default
        is a random id per bus object, right for any backend whose numbering lives in it.

        Raises:
            ControlBusError: the backend is unreachable.
        """
        check_topic(topic)
        if self._instance_epoch is None:
            self._instance_epoch = uuid.uuid4().hex
        return self._instance_epoch

    @abstractmethod
    async def health(self) -> ComponentHealth:
        """``ok`` when the backend answers, ``down`` with a detail otherwise."""


def check_limit(limit: int) -> int:
    """``limit`` as given, or ``ValueError`` naming it when it is not an int ≥ 0."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be an integer >= 0, got {limit!r}")
    return limit


def check_topic(topic: str) -> str:
    """``topic`` as given, or ``ValueError`` naming it when it is not a non-empty string."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"topic must be a non-empty string, got {topic!r}")
    return topic
