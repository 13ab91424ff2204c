"""``GET /rebalancing/runs/{run_id}`` and ``GET /worlds/{world_id}/audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from qmtl.contracts import ApplyResponse, WorldAudit
from qmtl.contracts.errors import NotFound, StoreUnavailable, Unauthorized
from qmtl.web.errors import error_responses

from ..deps import Runtime
from ..reads import DEFAULT_AUDIT_LIMIT
from ._openapi import json_response

router = APIRouter(tags=["runs"])

_ERRORS = error_responses(Unauthorized, NotFound, StoreUnavailable)


@router.get(
    "/rebalancing/runs/{run_id}",
    summary="The stored response of an applied run",
    response_class=Response,
    responses={200: {"model": ApplyResponse}, **_ERRORS},
)
async def get_run(run_id: str, runtime: Runtime) -> Response:
    return json_response(await runtime.reads.run(run_id))


@router.get("/worlds/{world_id}/audit", summary="A world's audit trail, newest first",
            response_model=WorldAudit, responses=_ERRORS)
async def get_audit(
    world_id: str,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=10_000)] = DEFAULT_AUDIT_LIMIT,
) -> WorldAudit:
    return await runtime.reads.audit(world_id, limit=limit)
