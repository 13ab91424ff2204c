"""Event accounting for end-to-end tests: who received which event, how often, in what order.

*Produced* events are read from the WorldService's own record — the ``outbox`` table in
PostgreSQL (one row per world of every committed apply, with its CloudEvent id and per-world
``seq``) — so the expected set never comes from the delivery path under test.

*Delivered* events are recorded per subscriber: :class:`RawSubscriber` is a plain
``websockets`` connection speaking the SPEC 10 protocol (no reconnect, no deduplication: it
records exactly what the gateway sent); :class:`SdkSubscriber` drives ``qmtl.sdk``'s
``events()`` stream (reconnects and resumes with ``since_seq``).

:func:`account` turns both into one row per subscriber — produced / delivered / duplicated /
lost, plus events nobody produced and per-world order violations — and
:func:`format_table` prints them. :func:`bus_copies` counts how many times each event sits on
the Redis ControlBus stream (the relay publishes at least once), and
:func:`rebalance_request` is the small, hand-checkable request the scale-out and fault tests
apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING
from qmtl.controlbus import RedisStreamsControlBus
from qmtl.sdk import GatewayClient, ReconnectPolicy
from qmtl.sdk import RebalancingEvent as SdkEvent

__all__ = [
    "WORLDS",
    "Accounting",
    "Delivery",
    "Produced",
    "RawSubscriber",
    "SdkSubscriber",
    "Subscriber",
    "account",
    "assert_exactly_once",
    "bus_copies",
    "bus_summary",
    "closing",
    "format_table",
    "pg_count",
    "pg_payloads",
    "produced_events",
    "rebalance_request",
    "wait_until",
]

logger = logging.getLogger(__name__)

TEST_RECONNECT = ReconnectPolicy(initial_delay=0.1, max_delay=1.0, max_attempts=None,
                                 handshake_timeout=10.0)
"""SDK reconnect policy for tests: keep trying while a gateway restarts (never give up)."""


@dataclass(frozen=True, slots=True)
class Produced:
    """One committed event: CloudEvent id, world, per-world seq and run id."""

    event_id: str
    world_id: str
    seq: int
    run_id: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as a subscriber received it: ``world_seq`` is ``data.seq`` (per world,
    assigned by the WorldService); ``relay_seq`` is the gateway's top-level ``seq``."""

    event_id: str
    world_id: str
    world_seq: int
    relay_seq: int
    run_id: str


def pg_dsn(dsn: str) -> str:
    """A libpq DSN for asyncpg from a SQLAlchemy ``postgresql+asyncpg://`` DSN."""
    return dsn.replace("postgresql+asyncpg://", "postgresql://", 1)


async def produced_events(dsn: str, *, run_ids: Iterable[str] | None = None) -> list[Produced]:
    """Every outbox row (committed event) of the WorldService store at ``dsn``, in id order,
    optionally only those of ``run_ids``."""
    conn = await asyncpg.connect(pg_dsn(dsn))
    try:
        rows = await conn.fetch("SELECT event_id, world_id, seq, run_id FROM outbox ORDER BY id")
    finally:
        await conn.close()
    wanted = set(run_ids) if run_ids is not None else None
    return [Produced(r["event_id"], r["world_id"], r["seq"], r["run_id"]) for r in rows
            if wanted is None or r["run_id"] in wanted]


async def pg_payloads(dsn: str, run_id: str) -> list[bytes]:
    """The encoded CloudEvents of ``run_id`` exactly as the outbox relay publishes them."""
    conn = await asyncpg.connect(pg_dsn(dsn))
    try:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE run_id = $1 ORDER BY id",
                                run_id)
    finally:
        await conn.close()
    return [r["payload"].encode() for r in rows]


async def pg_count(dsn: str, query: str, *args: Any) -> int:
    """``SELECT count(*) …`` against the WorldService store."""
    conn = await asyncpg.connect(pg_dsn(dsn))
    try:
        return int(await conn.fetchval(query, *args))
    finally:
        await conn.close()


def bus_copies(redis_url: str) -> Counter[str]:
    """How many ControlBus (Redis stream) entries carry each CloudEvent id: the relay
    publishes at least once, so an id may appear more than once on the bus."""
    client = redis.Redis.from_url(redis_url)
    try:
        entries: Any = client.xrange(RedisStreamsControlBus.key(CONTROLBUS_TOPIC_REBALANCING))
    finally:
        client.close()
    return Counter(json.loads(fields[b"payload"])["id"] for _id, fields in entries)


def bus_summary(copies: Counter[str], produced: Sequence[Produced]) -> str:
    """One line: bus entries for the produced events and how many were re-published."""
    ids = {p.event_id for p in produced}
    entries = sum(n for event_id, n in copies.items() if event_id in ids)
    return (f"controlbus: {entries} entries for {len(ids)} produced events "
            f"({entries - len(ids & copies.keys())} re-published copies, dropped by the "
            f"gateway by event id); {len(ids - copies.keys())} never published")


@dataclass
class Subscriber:
    """What one subscriber received, in arrival order."""

    name: str
    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def ids(self) -> set[str]:
        return {d.event_id for d in self.deliveries}

    def has_all(self, event_ids: Iterable[str]) -> bool:
        return set(event_ids) <= self.ids()


def delivery_from_message(message: dict[str, Any]) -> Delivery:
    """A :class:`Delivery` from a relayed CloudEvent as sent on the WebSocket."""
    data = message["data"]
    return Delivery(event_id=message["id"], world_id=data["world_id"], world_seq=data["seq"],
                    relay_seq=message["seq"], run_id=data["run_id"])


class RawSubscriber(Subscriber):
    """A plain ``websockets`` client: subscribe once, record every event message verbatim.

    No reconnect and no deduplication — what it records is exactly what the gateway sent.
    """

    def __init__(self, name: str, ws_url: str, *, world_ids: list[str] | None = None,
                 since_seq: int | None = None) -> None:
        super().__init__(name)
        self.ws_url = ws_url
        self.world_ids = world_ids
        self.since_seq = since_seq
        self.recovered: bool | None = None
        self.closed_code: int | None = None
        self._conn: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> RawSubscriber:
        """Connect and subscribe; returns once the gateway answered ``subscribed``."""
        self._conn = await connect(self.ws_url, max_size=64 * 1024 * 1024, open_timeout=10)
        message: dict[str, Any] = {"type": "subscribe", "topics": ["rebalancing"]}
        if self.world_ids is not None:
            message["world_ids"] = self.world_ids
        if self.since_seq is not None:
            message["since_seq"] = self.since_seq
        await self._conn.send(json.dumps(message))
        answer = json.loads(await asyncio.wait_for(self._conn.recv(), 10))
        assert answer["type"] == "subscribed", answer
        self.recovered = answer["recovered"]
        self._task = asyncio.create_task(self._run(), name=f"raw-subscriber-{self.name}")
        return self

    async def _run(self) -> None:
        assert self._conn is not None
        try:
            async for raw in self._conn:
                message = json.loads(raw)
                if "specversion" not in message:
                    self.errors.append(f"non-event message: {message}")
                    continue
                self.deliveries.append(delivery_from_message(message))
        except ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd is not None else None
            self.errors.append(f"connection closed: {exc}")

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=5)
            if not self._task.done():
                self._task.cancel()


class SdkSubscriber(Subscriber):
    """``GatewayClient.events()`` consumed in a task (reconnects and resumes on its own)."""

    def __init__(self, name: str, gateway_url: str, *, world_ids: list[str] | None = None,
                 policy: ReconnectPolicy = TEST_RECONNECT) -> None:
        super().__init__(name)
        self.client = GatewayClient(gateway_url, reconnect=policy)
        self.stream = self.client.events(world_ids=world_ids)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> SdkSubscriber:
        """Subscribe now (so nothing applied afterwards is missed) and start consuming."""
        await self.stream.subscribed()
        self._task = asyncio.create_task(self._run(), name=f"sdk-subscriber-{self.name}")
        return self

    async def _run(self) -> None:
        event: SdkEvent
        try:
            async for event in self.stream:
                self.deliveries.append(Delivery(
                    event_id=event.id, world_id=event.world_id, world_seq=event.data.seq,
                    relay_seq=event.seq, run_id=event.run_id))
        except Exception as exc:  # recorded and asserted on by the tests (errors == [])
            logger.exception("sdk subscriber %s failed", self.name)
            self.errors.append(f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=5)
            if not self._task.done():
                self._task.cancel()


@dataclass(frozen=True, slots=True)
class Accounting:
    """One subscriber's ledger against the produced events it should have seen."""

    subscriber: str
    produced: int
    delivered: int
    duplicated: int
    lost: int
    unexpected: int
    out_of_order: int

    @property
    def exactly_once(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.unexpected == 0
                and self.out_of_order == 0)


def _order_violations(deliveries: Sequence[Delivery]) -> int:
    """Deliveries whose per-world seq or relay seq is not above the previous one's."""
    violations = 0
    last_world_seq: dict[str, int] = {}
    last_relay = 0
    for d in deliveries:
        if d.world_seq <= last_world_seq.get(d.world_id, 0):
            violations += 1
        if d.relay_seq <= last_relay:
            violations += 1
        last_world_seq[d.world_id] = max(d.world_seq, last_world_seq.get(d.world_id, 0))
        last_relay = max(last_relay, d.relay_seq)
    return violations


def account(produced: Sequence[Produced], subscriber: Subscriber, *,
            world_ids: Iterable[str] | None = None,
            ignore_run_ids: Iterable[str] = ()) -> Accounting:
    """Compare what ``subscriber`` received with ``produced`` (restricted to ``world_ids``).

    delivered = distinct produced ids received; duplicated = receipts beyond the first of an
    id; lost = produced ids never received; unexpected = ids received that were not produced
    (deliveries of ``ignore_run_ids`` are left out, e.g. runs from before the measurement);
    out_of_order = per-world ``data.seq`` or relay ``seq`` not strictly increasing.
    """
    worlds = set(world_ids) if world_ids is not None else None
    ignored = set(ignore_run_ids)
    expected = {p.event_id for p in produced if worlds is None or p.world_id in worlds}
    received = [d for d in subscriber.deliveries if d.run_id not in ignored]
    counts = Counter(d.event_id for d in received)
    delivered = expected & counts.keys()
    return Accounting(
        subscriber=subscriber.name,
        produced=len(expected),
        delivered=len(delivered),
        duplicated=sum(n - 1 for n in counts.values()),
        lost=len(expected - delivered),
        unexpected=len(counts.keys() - expected),
        out_of_order=_order_violations(received),
    )


def format_table(title: str, rows: Sequence[Accounting]) -> str:
    """A fixed-width text table of ``rows`` under ``title``."""
    header = ("subscriber", "produced", "delivered", "duplicated", "lost", "unexpected",
              "out_of_order")
    body = [(r.subscriber, r.produced, r.delivered, r.duplicated, r.lost, r.unexpected,
             r.out_of_order) for r in rows]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]

    def line(values: Sequence[object]) -> str:
        first, *rest = values
        return "  ".join([str(first).ljust(widths[0]),
                          *(str(v).rjust(w) for v, w in zip(rest, widths[1:], strict=True))])

    rule = "-" * len(line(header))
    return "\n".join([f"\n{title}", rule, line(header), rule, *(line(r) for r in body), rule])


def assert_exactly_once(rows: Sequence[Accounting]) -> None:
    """Every subscriber got every produced event once, in per-world order, nothing else."""
    bad = [r for r in rows if not r.exactly_once]
    assert not bad, f"deliveries that are not exactly-once and in order: {bad}"
    assert all(r.produced > 0 for r in rows), "nothing was produced: the check is vacuous"


async def wait_until(predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float,
                     what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; ``AssertionError`` naming ``what`` after
    ``timeout`` seconds (a deadline for eventual delivery, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def closing(subscribers: Sequence[RawSubscriber | SdkSubscriber]) -> Any:
    """Close every subscriber on exit (also when the test fails)."""
    try:
        yield subscribers
    finally:
        for subscriber in subscribers:
            await subscriber.aclose()


WORLDS = ("alpha", "beta", "gamma")


def rebalance_request(*, run_id: str | None = None, schema_version: int = 2,
                      after: dict[str, float] | None = None) -> dict[str, Any]:
    """A small three-world request whose plan can be checked by hand.

    total equity 1,000,000; before = 0.3 each; after (default) alpha 0.15, beta 0.45,
    gamma 0.3, so the world scales are alpha 0.5, beta 1.5, gamma 1.0:

    * alpha: BTC 2 → delta −1, ETH 30 → delta −15 (both venue binance);
    * beta:  BTC 1 → delta +0.5 (binance), SPY 200 → delta +100 (no venue);
    * gamma: unchanged → no deltas (and no commit-log batch when executed per world).
    """
    body: dict[str, Any] = {
        "total_equity": 1_000_000.0,
        "world_alloc_before": {"alpha": 0.3, "beta": 0.3, "gamma": 0.3},
        "world_alloc_after": after or {"alpha": 0.15, "beta": 0.45, "gamma": 0.3},
        "positions": [
            {"world_id": "alpha", "strategy_id": "a-trend", "symbol": "BTC", "qty": 2.0,
             "mark": 50_000.0, "venue": "binance"},
            {"world_id": "alpha", "strategy_id": "a-carry", "symbol": "ETH", "qty": 30.0,
             "mark": 3_000.0, "venue": "binance"},
            {"world_id": "beta", "strategy_id": "b-trend", "symbol": "BTC", "qty": 1.0,
             "mark": 50_000.0, "venue": "binance"},
            {"world_id": "beta", "strategy_id": "b-index", "symbol": "SPY", "qty": 200.0,
             "mark": 500.0, "venue": None},
            {"world_id": "gamma", "strategy_id": "g-carry", "symbol": "ETH", "qty": 10.0,
             "mark": 3_000.0, "venue": "binance"},
        ],
        "schema_version": schema_version,
        "rebalance_intent": {"meta": {"ticket": "E2E-B"}},
    }
    if run_id is not None:
        body["run_id"] = run_id
    return body
