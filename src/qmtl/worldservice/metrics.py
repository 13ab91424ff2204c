"""Every WorldService Prometheus metric, created once on the app's registry.

Names (all prefixed ``qmtl_worldservice_``):

=========================================  =========  ====================================
name                                       type       labels
=========================================  =========  ====================================
plans_total                                counter    served_version, mode
applies_total                              counter    served_version, outcome (applied|replayed)
plan_seconds                               histogram  (engine + alpha + rendering)
store_errors_total                         counter    operation
outbox_pending                             gauge
outbox_oldest_pending_age_seconds          gauge      (live: now − oldest pending created_at)
outbox_published_total                     counter
outbox_publish_failures_total              counter    world_id
outbox_publish_latency_seconds             histogram  (commit → published)
relay_errors_total                         counter    (cycles that failed on the store)
=========================================  =========  ====================================
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["WorldServiceMetrics"]

_PREFIX = "qmtl_worldservice_"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WorldServiceMetrics:
    """Metric handles with methods named for what happened."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.plans = Counter(_PREFIX + "plans_total", "Plans served",
                             ["served_version", "mode"], registry=registry)
        self.applies = Counter(_PREFIX + "applies_total", "Apply requests answered",
                               ["served_version", "outcome"], registry=registry)
        self.plan_seconds = Histogram(_PREFIX + "plan_seconds",
                                      "Engine + alpha + rendering time per plan",
                                      buckets=_LATENCY_BUCKETS, registry=registry)
        self.store_errors = Counter(_PREFIX + "store_errors_total",
                                    "Store operations that failed", ["operation"],
                                    registry=registry)
        self.outbox_pending = Gauge(_PREFIX + "outbox_pending",
                                    "Outbox rows not yet published", registry=registry)
        self.outbox_oldest_age = Gauge(_PREFIX + "outbox_oldest_pending_age_seconds",
                                       "Age of the oldest unpublished outbox row",
                                       registry=registry)
        self.outbox_published = Counter(_PREFIX + "outbox_published_total",
                                        "Outbox rows published", registry=registry)
        self.publish_failures = Counter(_PREFIX + "outbox_publish_failures_total",
                                        "Failed ControlBus publishes", ["world_id"],
                                        registry=registry)
        self.publish_latency = Histogram(_PREFIX + "outbox_publish_latency_seconds",
                                         "Commit to ControlBus publish",
                                         buckets=_LATENCY_BUCKETS, registry=registry)
        self.relay_errors = Counter(_PREFIX + "relay_errors_total",
                                    "Relay cycles that failed on the store", registry=registry)
        self._oldest_pending: float | None = None
        self.outbox_oldest_age.set_function(self._oldest_age)

    def _oldest_age(self) -> float:
        oldest = self._oldest_pending
        return max(0.0, time.time() - oldest) if oldest is not None else 0.0

    def plan_served(self, *, version: int, mode: str, seconds: float) -> None:
        self.plans.labels(served_version=str(version), mode=mode).inc()
        self.plan_seconds.observe(seconds)

    def apply_answered(self, *, version: int, replayed: bool) -> None:
        self.applies.labels(served_version=str(version),
                            outcome="replayed" if replayed else "applied").inc()

    def store_failed(self, operation: str) -> None:
        self.store_errors.labels(operation=operation).inc()

    def outbox_lag(self, *, pending: int, oldest_created_at: datetime | None) -> None:
        self.outbox_pending.set(pending)
        self._oldest_pending = oldest_created_at.timestamp() if oldest_created_at else None

    def published(self, *, count: int, latencies: list[float]) -> None:
        self.outbox_published.inc(count)
        for seconds in latencies:
            self.publish_latency.observe(seconds)

    def publish_failed(self, world_id: str) -> None:
        self.publish_failures.labels(world_id=world_id).inc()

    def relay_failed(self) -> None:
        self.relay_errors.inc()
