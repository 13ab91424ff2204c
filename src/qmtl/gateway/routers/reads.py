"""Read routes relayed to the WorldService behind the gateway's auth.

``GET /allocations[?world_id=]`` (with its ``ETag``), ``GET /rebalancing/runs/{run_id}`` and
``GET /worlds/{world_id}/audit[?limit=]``: a client that can reach only the gateway (the CLI's
``qmtl allocations``, ``qmtl runs show``, ``qmtl audit``; the SDK's read methods) sees the same
documents and the same errors (404 ``E_NOT_FOUND``...) as the WorldService gives.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response

from qmtl.contracts import AllocationState, ApplyResponse, WorldAudit
from qmtl.contracts import errors as E
from qmtl.web.errors import error_responses

from ..deps import StateDep

__all__ = ["router"]

router = APIRouter(tags=["reads"])

_ERRORS = error_responses(E.Unauthorized, E.NotFound, E.StoreUnavailable,
                          E.WorldServiceUnavailable, E.WorldServiceTimeout)


def _relayed(content: bytes, headers: dict[str, str]) -> Response:
    return Response(content, media_type="application/json",
                    headers={name.title(): value for name, value in headers.items()})


@router.get("/allocations", summary="The WorldService's stored allocations, with their ETag",
            response_class=Response, responses={200: {"model": AllocationState}, **_ERRORS})
async def allocations(
    state: StateDep, world_id: Annotated[str | None, Query(min_length=1)] = None
) -> Response:
    query = {"world_id": world_id} if world_id is not None else None
    return _relayed(*await state.client.get_read("allocations", "/allocations", query=query))


@router.get("/rebalancing/runs/{run_id}", summary="The stored response of an applied run",
            response_class=Response, responses={200: {"model": ApplyResponse}, **_ERRORS})
async def run(run_id: str, state: StateDep) -> Response:
    path = f"/rebalancing/runs/{quote(run_id, safe='')}"
    return _relayed(*await state.client.get_read("runs", path))


@router.get("/worlds/{world_id}/audit", summary="A world's audit trail, newest first",
            response_class=Response, responses={200: {"model": WorldAudit}, **_ERRORS})
async def audit(
    world_id: str, state: StateDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    path = f"/worlds/{quote(world_id, safe='')}/audit"
    query = {"limit": str(limit)} if limit is not None else None
    return _relayed(*await state.client.get_read("audit", path, query=query))
