"""The gateway application factory and its lifespan.

The lifespan opens, in order: the WorldService client (one ``httpx.AsyncClient``), the
commit log, the ControlBus, the event hub and its consumer task, the first WorldService
probe and the capability refresher; it closes them in reverse order. A commit log or bus
that is down at start-up does not stop the gateway: ``/health`` reports it and submit
answers 503 until it is back — each call tries again, nothing stays degraded for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import CommitLogUnavailable
from qmtl.controlbus import ControlBus, create_controlbus
from qmtl.gateway.commitlog import CommitLog, create_commit_log
from qmtl.web.auth import bearer_dependency
from qmtl.web.errors import install_error_handlers
from qmtl.web.limits import BodySizeLimitMiddleware
from qmtl.web.observability import metrics_router, redact_secrets_in_server_logs
from qmtl.web.openapi import install_openapi

from .config import GatewaySettings
from .consumer import ControlBusConsumer
from .deps import GatewayState
from .execute import ExecuteService
from .hub import EventHub
from .metrics import GatewayMetrics
from .routers import console, explain, health, reads, rebalancing, ws
from .worldservice_client import WorldServiceClient

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

CONSUMER_READY_TIMEOUT = 5.0
"""Seconds start-up waits for the ControlBus history to load before serving anyway."""


async def _refresh_capabilities(client: WorldServiceClient, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        probe = await client.refresh()
        logger.debug("worldservice probe: %s versions=%s", probe.status, probe.schema_versions)


async def _start_commit_log(log: CommitLog) -> CommitLog:
    try:
        await log.start()
    except CommitLogUnavailable as exc:
        # Kept, not dropped: every later call tries to open it again, so the gateway
        # recovers once the file (or Redis) is back instead of staying degraded.
        logger.error("commit log %s did not start: %s; submit answers 503 until it opens",
                     log.url, exc.message)
    return log


def _log_task_end(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s died", task.get_name(), exc_info=task.exception())


async def _stop_task(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: GatewaySettings, *, controlbus: ControlBus | None = None,
               registry: CollectorRegistry | None = None,
               transport: httpx.AsyncBaseTransport | None = None,
               commit_log: CommitLog | None = None) -> FastAPI:
    """Build a gateway for ``settings``.

    Args:
        settings: validated gateway settings.
        controlbus: a bus to consume instead of ``settings.controlbus`` (its lifetime stays
            with the caller).
        registry: the Prometheus registry (a fresh one by default).
        transport: an httpx transport for WorldService calls (tests).
        commit_log: a commit log instead of ``settings.commit_log`` (tests; started and
            closed by the app).
    """
    registry = registry if registry is not None else CollectorRegistry()
    redact_secrets_in_server_logs()  # clients may put their token in the /ws URL
    metrics = GatewayMetrics(registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = WorldServiceClient(settings, metrics=metrics, transport=transport)
        log = await _start_commit_log(commit_log or create_commit_log(settings.commit_log))
        bus = controlbus if controlbus is not None else create_controlbus(settings.controlbus)
        if controlbus is None:
            await bus.start()
        hub = EventHub(history_size=settings.ws.history_size,
                       client_queue_size=settings.ws.client_queue_size)
        hub.on_overflow = lambda _subscriber: metrics.add_ws_disconnect("overflow_detected")
        consumer = ControlBusConsumer(bus, hub, metrics=metrics,
                                      history_size=settings.ws.history_size)
        consumer_task = asyncio.create_task(consumer.run(), name="gateway-controlbus-consumer")
        consumer_task.add_done_callback(_log_task_end)
        await client.refresh()
        try:
            await asyncio.wait_for(consumer.ready.wait(), CONSUMER_READY_TIMEOUT)
        except TimeoutError:
            logger.warning("controlbus history not loaded after %.0fs; serving anyway",
                           CONSUMER_READY_TIMEOUT)
        refresher = asyncio.create_task(
            _refresh_capabilities(client, settings.capability_refresh_seconds),
            name="gateway-capability-refresher")
        refresher.add_done_callback(_log_task_end)
        app.state.gateway = GatewayState(
            settings=settings, metrics=metrics, client=client, commit_log=log, bus=bus, hub=hub,
            consumer=consumer,
            execute=ExecuteService(settings=settings, client=client, commit_log=log,
                                   metrics=metrics),
        )
        try:
            yield
        finally:
            await _stop_task(refresher)
            hub.close()
            await _stop_task(consumer_task)
            if controlbus is None:
                await bus.close()
            await log.close()
            await client.aclose()

    auth = [Depends(bearer_dependency(settings.auth.tokens))]
    app = FastAPI(
        title="QMTL Gateway",
        summary="Negotiated plan/apply proxy, order execution and rebalancing event relay",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(metrics_router(registry),
                       dependencies=auth if settings.auth.protect_metrics else [])
    app.include_router(rebalancing.router, dependencies=auth)
    app.include_router(reads.router, dependencies=auth)
    app.include_router(explain.router, dependencies=auth)
    app.include_router(console.router)
    app.include_router(ws.router)

    install_openapi(app, body_models=[MultiWorldRebalanceRequest], dependencies=auth)

    return app
