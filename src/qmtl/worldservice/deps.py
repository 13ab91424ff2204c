"""Request-scoped dependencies: the app's runtime objects and parsed bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from qmtl.contracts import AllocationUpsert, MultiWorldRebalanceRequest
from qmtl.contracts.errors import PayloadTooLarge
from qmtl.controlbus import ControlBus
from qmtl.engine.columns import ColumnRequest

from .allocations import AllocationService
from .apply import ApplyService
from .bodies import parse_body, parse_plan_body
from .config import WorldServiceSettings
from .health import HealthService
from .metrics import WorldServiceMetrics
from .planning import PlanningService
from .reads import ReadService
from .relay import OutboxRelay
from .store.database import Database

__all__ = [
    "AllocationBody",
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
    """The validated plan/apply body; 413 when it holds more than ``max_positions``."""
    body = await parse_body(await request.body(), MultiWorldRebalanceRequest)
    limit = runtime.settings.max_positions
    if len(body.positions) > limit:
        raise PayloadTooLarge(
            f"{len(body.positions)} positions is over the limit of {limit} "
            "(worldservice.server.max_positions)",
            positions=len(body.positions), limit_positions=limit,
        )
    return body


def _check_size(count: int, limit: int) -> None:
    if count > limit:
        raise PayloadTooLarge(
            f"{count} positions is over the limit of {limit} "
            "(worldservice.server.max_positions)",
            positions=count, limit_positions=limit,
        )


async def plan_body(request: Request, runtime: Runtime
                    ) -> ColumnRequest | MultiWorldRebalanceRequest:
    """The plan body, positions in columns when the fast reader accepts it (see
    ``bodies.parse_plan_body``); 413 over ``max_positions``."""
    body = await parse_plan_body(await request.body())
    count = len(body) if isinstance(body, ColumnRequest) else len(body.positions)
    _check_size(count, runtime.settings.max_positions)
    return body


async def allocation_body(request: Request) -> AllocationUpsert:
    return await parse_body(await request.body(), AllocationUpsert)


PlanBody = Annotated[ColumnRequest | MultiWorldRebalanceRequest, Depends(plan_body)]
RebalanceBody = Annotated[MultiWorldRebalanceRequest, Depends(rebalance_body)]
AllocationBody = Annotated[AllocationUpsert, Depends(allocation_body)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
