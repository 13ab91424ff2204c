"""The outbox relay: publishes committed ``rebalancing_planned`` events on the ControlBus.

One background task per app (started by the lifespan, with its own database sessions):

* a cycle reads up to ``batch_size`` unpublished rows in id order, groups them by world
  (seq order) and publishes each world's rows in order; a world stops at its first failed
  publish — its later rows wait, so per-world order is kept — and the relay goes on with
  the OTHER worlds. Published rows are marked; a failed row records ``attempts``,
  ``last_error`` and ``next_attempt_at`` = now + min(backoff_max, backoff_initial ·
  2^attempts), and its world is left out of the batches until then (so a stuck world
  never fills a batch and holds up the others);
* :meth:`OutboxRelay.wake` (called after an apply commits) starts a cycle at once; otherwise
  the relay polls every ``poll_interval`` (rows of other replicas, rows left by a restart,
  retries that became due). Pending rows are picked up when the relay starts;
* a store failure ends the cycle (logged and counted) and the relay tries again later.

Delivery is at least once: a crash between publishing and marking re-publishes the rows
(consumers deduplicate on the CloudEvent id).

Several replicas on one PostgreSQL: a cycle runs only while its replica holds the
transaction-scoped advisory lock ``pg_try_advisory_xact_lock(RELAY_LOCK_KEY)`` on a lease
connection (released by commit, or by the server when the connection dies). At most one
replica publishes at a time and each cycle starts from what the previous one marked, so
per-world order holds and duplicates happen only after a crash. Replicas that do not get
the lock skip the cycle (after a wake-up they retry within ``LEASE_RETRY_SECONDS``, since
the lease holder may have fetched before their commit). SQLite is a single-replica store
and needs no lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from qmtl.contracts.errors import StoreUnavailable
from qmtl.controlbus import ControlBus

from .config import RelaySettings
from .metrics import WorldServiceMetrics
from .store import outbox as outbox_store
from .store.database import Database
from .store.outbox import OutboxRow

__all__ = ["LEASE_RETRY_SECONDS", "CycleResult", "OutboxRelay"]

logger = logging.getLogger(__name__)

LEASE_RETRY_SECONDS = 0.05
"""After a wake-up that found the PostgreSQL relay lease taken, retry this soon."""


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle did; ``more`` asks for another cycle at once."""

    published: int
    failed: int
    leased: bool
    more: bool
    next_due: datetime | None


def _backoff(settings: RelaySettings, attempts: int) -> float:
    """Seconds before retrying a row that has failed ``attempts + 1`` times."""
    return float(min(settings.backoff_max, settings.backoff_initial * 2.0 ** min(attempts, 30)))


class OutboxRelay:
    """Publishes outbox rows; see the module docstring for the guarantees."""

    def __init__(self, *, db: Database, bus: ControlBus, settings: RelaySettings,
                 metrics: WorldServiceMetrics) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # One cycle at a time in this process (the loop and direct callers share it).
        self._cycle_lock = asyncio.Lock()
        self._lag_refreshed = 0.0
        self.cycles = 0

    def wake(self) -> None:
        """Run a cycle as soon as possible (called after an apply commits)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="qmtl-outbox-relay")

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Finish the current cycle (or cancel it after ``timeout`` s) and stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            logger.warning("outbox relay did not stop within %.1fs; cancelling", timeout)
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            logger.error("outbox relay ended with an error", exc_info=task.exception())

    async def _loop(self) -> None:
        woken = True  # pending rows are picked up at start
        while not self._stopping:
            woken = woken or self._wake.is_set()
            self._wake.clear()
            delay = self.settings.poll_interval
            try:
                result = await self.run_once()
            except StoreUnavailable:
                self.metrics.relay_failed()
            except Exception:
                # Never let the relay die: log with the traceback, count, and try again.
                logger.exception("outbox relay cycle failed")
                self.metrics.relay_failed()
            else:
                # Woken but another replica held the lease (it may have fetched before our
                # commit): try again soon instead of waiting for the next poll.
                woken = woken and not result.leased
                if woken:
                    delay = min(delay, LEASE_RETRY_SECONDS)
                if result.more:
                    delay = 0.0
                elif result.next_due is not None:
                    due_in = (result.next_due - datetime.now(UTC)).total_seconds()
                    delay = max(0.0, min(delay, due_in))
            if delay > 0 and not self._stopping:
                with anyio.move_on_after(delay):
                    await self._wake.wait()

    @asynccontextmanager
    async def _lease(self) -> AsyncIterator[bool]:
        if not self.db.is_postgres:
            yield True
            return
        with self.db.errors("outbox.lease"):
            async with self.db.engine.connect() as conn, conn.begin():
                yield await outbox_store.try_relay_lease(conn)

    async def run_once(self) -> CycleResult:
        """One cycle: publish what is due, mark it, record failures, refresh lag metrics.

        Raises:
            StoreUnavailable: the store failed (the cycle's publishes are re-sent later).
        """
        async with self._cycle_lock:
            self.cycles += 1
            return await self._cycle()

    async def _cycle(self) -> CycleResult:
        async with self._lease() as leased:
            if not leased:
                await self._refresh_lag()
                return CycleResult(published=0, failed=0, leased=False, more=False,
                                   next_due=None)
            async with self.db.read("outbox.fetch") as conn:
                rows, blocked_due = await outbox_store.fetch_pending(
                    conn, limit=self.settings.batch_size, now=datetime.now(UTC))
            published, failures, next_due = await self._publish(rows)
            if blocked_due is not None:
                next_due = min(next_due or blocked_due, blocked_due)
            if published or failures:
                now = datetime.now(UTC)
                async with self.db.write("outbox.mark") as conn:
                    await outbox_store.mark_published(conn, [r.id for r in published], now=now)
                    for row, error, due in failures:
                        await outbox_store.record_failure(conn, row.id, error=error,
                                                          next_attempt_at=due)
                self.metrics.published(
                    count=len(published),
                    latencies=[(now - r.created_at).total_seconds() for r in published],
                )
        await self._refresh_lag(force=not published and not failures)
        more = len(rows) >= self.settings.batch_size and bool(published)
        return CycleResult(published=len(published), failed=len(failures), leased=True,
                           more=more, next_due=next_due)

    async def _publish(
        self, rows: list[OutboxRow]
    ) -> tuple[list[OutboxRow], list[tuple[OutboxRow, str, datetime]], datetime | None]:
        by_world: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_world.setdefault(row.world_id, []).append(row)
        published: list[OutboxRow] = []
        failures: list[tuple[OutboxRow, str, datetime]] = []
        next_due: datetime | None = None
        for world_id, world_rows in by_world.items():
            world_rows.sort(key=lambda r: r.seq)
            head = world_rows[0]
            now = datetime.now(UTC)
            if head.next_attempt_at is not None and head.next_attempt_at > now:
                next_due = min(next_due or head.next_attempt_at, head.next_attempt_at)
                continue
            for row in world_rows:
                try:
                    await self.bus.publish(row.topic, row.payload.encode())
                except Exception as exc:
                    # Any publish failure (ControlBusError or an unexpected one) only stops
                    # this world; the row is retried with backoff.
                    delay = _backoff(self.settings, row.attempts)
                    due = datetime.now(UTC) + timedelta(seconds=delay)
                    logger.warning(
                        "publishing event %s (world %s, seq %d) failed, retry in %.2fs: %r",
                        row.event_id, world_id, row.seq, delay, exc,
                        exc_info=not isinstance(exc, ConnectionError),
                        extra={"world_id": world_id, "run_id": row.run_id,
                               "event_id": row.event_id, "attempts": row.attempts + 1},
                    )
                    self.metrics.publish_failed(world_id)
                    failures.append((row, f"{type(exc).__name__}: {exc}", due))
                    next_due = min(next_due or due, due)
                    break
                published.append(row)
                logger.debug("published event %s", row.event_id,
                             extra={"world_id": world_id, "run_id": row.run_id,
                                    "event_id": row.event_id, "seq": row.seq})
        return published, failures, next_due

    async def _refresh_lag(self, *, force: bool = True) -> None:
        # After a busy cycle the lag gauges are refreshed at most once per poll interval
        # (GET /health refreshes them too); an idle cycle always refreshes them.
        now = time.monotonic()
        if not force and now - self._lag_refreshed < self.settings.poll_interval:
            return
        self._lag_refreshed = now
        async with self.db.read("outbox.stats") as conn:
            stats = await outbox_store.pending_stats(conn)
        self.metrics.outbox_lag(pending=stats.pending, oldest_created_at=stats.oldest_created_at)
