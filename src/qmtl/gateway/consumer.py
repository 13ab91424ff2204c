"""ControlBus -> WebSocket relay: consume WorldService events and hand them to the hub.

Start-up: subscribe first (which fixes the start position), read the bus's epoch for the hub
(the numbering the relay's ``seq`` belongs to), then load the newest ``history_size``
messages with ``bus.history``; messages the subscription yields again are dropped by seq, so
nothing published in between is lost or doubled.

Per message (at-least-once input, SPEC 2.6/6): decode the CloudEvent, route on its
``type`` (unknown types are counted and ignored), validate ``rebalancing_planned`` data
(v1 or v2; invalid -> logged + counted, not relayed), drop duplicate event ids (bounded
memory), count the plan, and publish to the hub with seq = the bus message seq.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from typing import Any

from qmtl.contracts import (
    CONTROLBUS_TOPIC_REBALANCING,
    EVENT_TYPE_REBALANCING_PLANNED,
    RELAY_EVENT_TYPE_REBALANCING_PLANNED,
    CloudEvent,
    decode_event,
    parse_rebalancing_planned,
)
from qmtl.contracts.errors import EventDecodeError
from qmtl.controlbus import BusMessage, ControlBus, ControlBusError, Subscription

from .hub import EventHub, RelayedEvent
from .metrics import GatewayMetrics

__all__ = ["ControlBusConsumer", "relay_message"]

logger = logging.getLogger(__name__)

DEFAULT_DEDUPE_SIZE = 100_000
RETRY_INITIAL = 0.1
RETRY_MAX = 5.0


def relay_message(event: CloudEvent, *, seq: int) -> str:
    """The text sent to WebSocket clients: the event as ``rebalancing.planned`` + ``seq``.

    ``data`` is the WorldService's data exactly as it came (v1 and v2 pass unchanged).
    """
    envelope: dict[str, Any] = event.model_dump(mode="json")
    envelope["type"] = RELAY_EVENT_TYPE_REBALANCING_PLANNED
    envelope["data"] = event.data
    envelope["seq"] = seq
    return json.dumps(envelope, separators=(",", ":"), allow_nan=False)


class _BoundedIdSet:
    """The most recent ``size`` event ids (oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, event_id: str) -> bool:
        """``True`` when the id is new."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class ControlBusConsumer:
    """Consumes one ControlBus topic into an :class:`EventHub`.

    Args:
        bus: the ControlBus (its lifetime belongs to the caller).
        hub: where accepted events go.
        metrics: counters for outcomes and plans.
        history_size: messages loaded at start-up for ``since_seq`` resume.
    """

    def __init__(self, bus: ControlBus, hub: EventHub, *, metrics: GatewayMetrics,
                 history_size: int, topic: str = CONTROLBUS_TOPIC_REBALANCING,
                 dedupe_size: int = DEFAULT_DEDUPE_SIZE) -> None:
        self.bus = bus
        self.hub = hub
        self.metrics = metrics
        self.topic = topic
        self.history_size = history_size
        self._seen = _BoundedIdSet(dedupe_size)
        self.ready = asyncio.Event()
        self.last_handled_seq = 0

    def handle(self, message: BusMessage) -> str:
        """Process one bus message; returns the outcome (also counted).

        Outcomes: ``relayed``, ``stale`` (seq already handled), ``undecodable``,
        ``unknown_type``, ``invalid``, ``duplicate``.
        """
        if message.seq <= self.last_handled_seq:
            outcome = "stale"
        else:
            outcome = self._handle(message)
            self.last_handled_seq = message.seq
        self.metrics.add_controlbus_event(outcome)
        return outcome

    def _handle(self, message: BusMessage) -> str:
        try:
            event = decode_event(message.payload)
        except EventDecodeError as exc:
            logger.warning("dropping undecodable controlbus message seq=%d: %s",
                           message.seq, exc.message, extra={"seq": message.seq})
            return "undecodable"
        if event.type != EVENT_TYPE_REBALANCING_PLANNED:
            logger.debug("ignoring controlbus event of type %r", event.type,
                         extra={"event_id": event.id})
            return "unknown_type"
        try:
            data = parse_rebalancing_planned(event)
        except EventDecodeError as exc:
            logger.warning("dropping invalid rebalancing_planned event %s: %s",
                           event.id, exc.message, extra={"event_id": event.id})
            return "invalid"
        if not self._seen.add(event.id):
            logger.info("dropping duplicate event %s", event.id,
                        extra={"event_id": event.id, "world_id": data.world_id})
            return "duplicate"
        self.metrics.observe_plan(world_id=data.world_id, delta_count=len(data.plan.deltas))
        self.hub.publish(RelayedEvent(seq=message.seq, world_id=data.world_id,
                                      event_id=event.id,
                                      text=relay_message(event, seq=message.seq)))
        return "relayed"

    async def _load_history(self) -> None:
        # The epoch first: every seq loaded or relayed from now on belongs to it.
        self.hub.epoch = await self.bus.epoch(self.topic)
        history = await self.bus.history(self.topic, limit=self.history_size)
        if len(history) >= self.history_size and history:
            # There may be older messages we did not load: they cannot be replayed.
            self.hub.mark_unavailable_through(history[0].seq - 1)
        for message in history:
            self.handle(message)
        logger.info("loaded %d controlbus messages for replay (last seq %d)",
                    len(history), self.hub.last_seq)

    async def _start(self) -> Subscription:
        """Subscribe (start position fixed now), then load the history; retried until the
        bus answers."""
        delay = RETRY_INITIAL
        while True:
            subscription: Subscription | None = None
            try:
                subscription = await self.bus.subscribe(self.topic)
                await self._load_history()
                self.ready.set()
                return subscription
            except ControlBusError as exc:
                self.metrics.add_controlbus_error()
                logger.warning("controlbus unavailable at start-up (%s); retrying in %.1fs",
                               exc, delay)
                if subscription is not None:
                    await subscription.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def run(self) -> None:
        """Consume until cancelled or the bus closes; bus outages are retried with backoff."""
        subscription = await self._start()
        delay = RETRY_INITIAL
        while True:
            try:
                async for message in subscription:
                    self.handle(message)
                    delay = RETRY_INITIAL
                    # Let the WebSocket senders run between the events of a burst.
                    await asyncio.sleep(0)
                logger.info("controlbus subscription to %r ended", self.topic)
                return
            except ControlBusError as exc:
                # Backends retry transient failures themselves; this is the rare hard error.
                self.metrics.add_controlbus_error()
                logger.warning("controlbus read failed (%s); resubscribing in %.1fs",
                               exc, delay)
                await subscription.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                after = (self.bus.position_for_seq(self.last_handled_seq)
                         if self.last_handled_seq else None)
                subscription = self.bus.subscribe(self.topic, after=after)
