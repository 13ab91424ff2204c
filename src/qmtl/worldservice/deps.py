"""Request-scoped dependencies: the app's runtime objects and parsed bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from qmtl.contracts import AllocationUpsert, MultiWorldRebalanceRequest
from qmtl.controlbus import ControlBus
from qmtl.engine.columns import ColumnRequest

from .allocations import AllocationService
from .apply import ApplyService
from .arrow_bodies import ArrowPlanRequest
from .bodies import parse_body
from .config import WorldServiceSettings
from .health import HealthService
from .media import read_apply_body, read_plan_body, read_request_body
from .metrics import WorldServiceMetrics
from .planning import PlanningService
from .reads import ReadService
from .relay import OutboxRelay
from .store.database import Database

__all__ = [
    "AllocationBody",
    "ApplyBody",
    "IfMatch",
    "PlanBody",
    "RebalanceBody",
    "Runtime",
    "WorldServiceRuntime",
    "get_runtime",
]


@dataclass(frozen=True, slots=True)
class WorldServiceRuntime:
    """Everything the lifespan opened; handed to routes through ``request.state``."""

    settings: WorldServiceSettings
    db: Database
    bus: ControlBus
    metrics: WorldServiceMetrics
    relay: OutboxRelay
    planning: PlanningService
    applier: ApplyService
    allocations: AllocationService
    reads: ReadService
    health: HealthService


async def get_runtime(request: Request) -> WorldServiceRuntime:
    # async: a plain def dependency would cost a thread-pool hop on every request.
    runtime = request.state.worldservice
    assert isinstance(runtime, WorldServiceRuntime)
    return runtime


Runtime = Annotated[WorldServiceRuntime, Depends(get_runtime)]


async def rebalance_body(request: Request, runtime: Runtime) -> MultiWorldRebalanceRequest:
    """The validated body as wire models (JSON, or Arrow IPC: ``media``) for routes that
    need position objects (explain); 413 when it holds more than ``max_positions``; 415 for
    another ``Content-Type``."""
    body = await read_request_body(await request.body(), request.headers.get("content-type"),
                                   max_positions=runtime.settings.max_positions)
    # Explain reads wire models, so Arrow rows become models here.
    return body.full_request() if isinstance(body, ArrowPlanRequest) else body


async def plan_body(request: Request, runtime: Runtime
                    ) -> ColumnRequest | MultiWorldRebalanceRequest | ArrowPlanRequest:
    """The plan body with its positions in columns where it can be (JSON through the fast
    reader, see ``bodies.parse_plan_body``; Arrow); 413 over ``max_positions``."""
    return await read_plan_body(await request.body(), request.headers.get("content-type"),
                                max_positions=runtime.settings.max_positions)


async def apply_body(request: Request, runtime: Runtime) -> ColumnRequest:
    """The apply body with its positions in columns (JSON through the fast reader with the
    pydantic fallback, or Arrow: ``media.read_apply_body``); 413 over ``max_positions``."""
    return await read_apply_body(await request.body(), request.headers.get("content-type"),
                                 max_positions=runtime.settings.max_positions)


async def allocation_body(request: Request) -> AllocationUpsert:
    return await parse_body(await request.body(), AllocationUpsert)


RebalanceBody = Annotated[MultiWorldRebalanceRequest, Depends(rebalance_body)]
PlanBody = Annotated[ColumnRequest | MultiWorldRebalanceRequest | ArrowPlanRequest,
                     Depends(plan_body)]
ApplyBody = Annotated[ColumnRequest, Depends(apply_body)]
AllocationBody = Annotated[AllocationUpsert, Depends(allocation_body)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
