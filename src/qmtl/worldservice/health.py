"""``GET /health``: store, ControlBus, outbox lag, served schema versions and both flags.

``status`` is ``degraded`` when the store or the bus is down; the document is still
served with HTTP 200 so that clients can read ``schema_versions`` and the flags.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio

from qmtl.contracts import (
    ComponentHealth,
    OutboxHealth,
    WorldServiceHealth,
    served_schema_versions,
)
from qmtl.contracts.errors import StoreUnavailable
from qmtl.controlbus import ControlBus

from .config import WorldServiceSettings
from .metrics import WorldServiceMetrics
from .store import outbox as outbox_store
from .store.database import Database

__all__ = ["HEALTH_TIMEOUT", "HealthService"]

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2.0
"""Seconds each dependency check may take before it is reported down."""


class HealthService:
    def __init__(self, *, settings: WorldServiceSettings, db: Database, bus: ControlBus,
                 metrics: WorldServiceMetrics) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.metrics = metrics

    async def _store(self) -> tuple[ComponentHealth, OutboxHealth]:
        backend = self.db.dialect
        try:
            with anyio.fail_after(HEALTH_TIMEOUT):
                async with self.db.read("health") as conn:
                    stats = await outbox_store.pending_stats(conn)
        except (StoreUnavailable, TimeoutError) as exc:
            logger.warning("store health check failed: %r", exc)
            return (ComponentHealth(status="down", detail=str(exc), backend=backend),
                    OutboxHealth(pending=0, oldest_pending_age_seconds=0.0))
        self.metrics.outbox_lag(pending=stats.pending, oldest_created_at=stats.oldest_created_at)
        age = 0.0
        if stats.oldest_created_at is not None:
            age = max(0.0, (datetime.now(UTC) - stats.oldest_created_at).total_seconds())
        return (ComponentHealth(status="ok", backend=backend),
                OutboxHealth(pending=stats.pending, oldest_pending_age_seconds=age))

    async def _bus(self) -> ComponentHealth:
        try:
            with anyio.fail_after(HEALTH_TIMEOUT):
                return await self.bus.health()
        except TimeoutError:
            return ComponentHealth(status="down", detail="the ControlBus health check timed out")

    async def health(self) -> WorldServiceHealth:
        store, outbox = await self._store()
        bus = await self._bus()
        ok = store.status == "ok" and bus.status == "ok"
        return WorldServiceHealth(
            status="ok" if ok else "degraded",
            store=store,
            controlbus=bus,
            outbox=outbox,
            schema_versions=served_schema_versions(
                compat_rebalance_v2=self.settings.compat_rebalance_v2
            ),
            compat_rebalance_v2=self.settings.compat_rebalance_v2,
            alpha_metrics_required=self.settings.alpha_metrics_required,
        )
