"""The WorldService application factory and its lifespan.

``create_app(settings)`` wires routes, error handlers, the body-size limit, bearer auth and
metrics. The lifespan owns the resources and closes them in reverse order: the database
(migrated to head at start-up), the ControlBus (unless one was injected: the caller owns
it), and the outbox relay task.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from qmtl.contracts import AllocationUpsert, MultiWorldRebalanceRequest
from qmtl.controlbus import ControlBus, create_controlbus
from qmtl.web.auth import bearer_dependency
from qmtl.web.errors import install_error_handlers
from qmtl.web.limits import BodySizeLimitMiddleware
from qmtl.web.observability import metrics_router
from qmtl.web.openapi import install_openapi

from .allocations import AllocationService
from .apply import ApplyService
from .config import WorldServiceSettings
from .deps import WorldServiceRuntime
from .health import HealthService
from .metrics import WorldServiceMetrics
from .planning import PlanningService
from .reads import ReadService
from .relay import OutboxRelay
from .routers import allocations, explain, ops, rebalancing, runs
from .store.database import Database, redact_dsn
from .store.migrate import upgrade

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

TITLE = "QMTL WorldService"
VERSION = "1.0"


def _lifespan(settings: WorldServiceSettings, metrics: WorldServiceMetrics,
              controlbus: ControlBus | None) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            db = Database.create(settings.dsn, timeout=settings.store_timeout,
                                 on_error=metrics.store_failed)
            stack.push_async_callback(db.dispose)
            await upgrade(db)
            bus = controlbus
            if bus is None:
                bus = create_controlbus(settings.controlbus)
                await bus.start()
                stack.push_async_callback(bus.close)
            relay = OutboxRelay(db=db, bus=bus, settings=settings.relay, metrics=metrics)
            planning = PlanningService(settings=settings, db=db, metrics=metrics)
            runtime = WorldServiceRuntime(
                settings=settings, db=db, bus=bus, metrics=metrics, relay=relay,
                planning=planning,
                applier=ApplyService(settings=settings, db=db, planning=planning,
                                     metrics=metrics, on_commit=relay.wake),
                allocations=AllocationService(db=db),
                reads=ReadService(db=db),
                health=HealthService(settings=settings, db=db, bus=bus, metrics=metrics),
            )
            await relay.start()
            stack.push_async_callback(relay.stop)
            logger.info("WorldService started: store %s, controlbus %s, schema versions %s",
                        redact_dsn(settings.dsn), bus.url,
                        "1,2" if settings.compat_rebalance_v2 else "1")
            yield {"worldservice": runtime}

    return lifespan


def create_app(settings: WorldServiceSettings, *, controlbus: ControlBus | None = None,
               registry: CollectorRegistry | None = None) -> FastAPI:
    """Build a WorldService app for ``settings``.

    Args:
        settings: the validated ``worldservice.server`` section.
        controlbus: a bus to publish on (owned by the caller); by default the lifespan
            opens ``settings.controlbus`` and closes it at shutdown.
        registry: the Prometheus registry for this app's metrics (a fresh one by default).
    """
    registry = registry if registry is not None else CollectorRegistry()
    metrics = WorldServiceMetrics(registry)
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Multi-world rebalancing plans, durable applies, allocation state and "
                    "rebalancing_planned events (QMTL SPEC 2, 5, 6, 8).",
        lifespan=_lifespan(settings, metrics, controlbus),
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    auth = [Depends(bearer_dependency(settings.auth.tokens))]
    app.include_router(rebalancing.router, dependencies=auth)
    app.include_router(explain.router, dependencies=auth)
    app.include_router(allocations.router, dependencies=auth)
    app.include_router(runs.router, dependencies=auth)
    install_openapi(app, body_models=[MultiWorldRebalanceRequest, AllocationUpsert],
                    dependencies=auth)
    app.include_router(ops.router)
    # /health stays open for probes; /metrics for scrapers unless auth.protect_metrics.
    app.include_router(metrics_router(registry),
                       dependencies=auth if settings.auth.protect_metrics else [])
    return app
