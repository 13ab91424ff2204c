"""``GET /rebalancing/runs/{run_id}`` and ``GET /worlds/{world_id}/audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from qmtl.contracts import ApplyResponse, WorldAudit, check_identifier
from qmtl.contracts.errors import NotFound, StoreUnavailable, Unauthorized
from qmtl.web.errors import error_responses

from ..deps import Runtime
from ..reads import DEFAULT_AUDIT_LIMIT
from ._openapi import json_response

router = APIRouter(tags=["runs"])

_ERRORS = error_responses(Unauthorized, NotFound, StoreUnavailable)

# Ids in paths follow the body's rule (SPEC 2): a NUL would reach the database as a 503.
RunIdPath = Annotated[str, Path(min_length=1), AfterValidator(check_identifier)]
WorldIdPath = Annotated[str, Path(min_length=1), AfterValidator(check_identifier)]


@router.get(
    "/rebalancing/runs/{run_id}",
    summary="The stored response of an applied run",
    response_class=Response,
    responses={200: {"model": ApplyResponse}, **_ERRORS},
)
async def get_run(run_id: RunIdPath, runtime: Runtime) -> Response:
    return json_response(await runtime.reads.run(run_id))


@router.get("/worlds/{world_id}/audit", summary="A world's audit trail, newest first",
            response_model=WorldAudit, responses=_ERRORS)
async def get_audit(
    world_id: WorldIdPath,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=10_000)] = DEFAULT_AUDIT_LIMIT,
) -> WorldAudit:
    return await runtime.reads.audit(world_id, limit=limit)
