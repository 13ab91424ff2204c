"""``GET /allocations``: the WorldService's allocation state, proxied read-only.

A client of the gateway (the console, an approval script) needs the state's ``ETag`` to send
``If-Match`` with ``POST /rebalancing/apply``; the ``ETag`` header comes back unchanged.
Writes stay on the WorldService.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from qmtl.contracts import AllocationState
from qmtl.contracts import errors as E
from qmtl.web.errors import error_responses

from ..deps import StateDep

__all__ = ["router"]

router = APIRouter(tags=["allocations"])


@router.get(
    "/allocations",
    summary="The WorldService's stored allocations and their ETag (read-only proxy)",
    responses={
        200: {"model": AllocationState},
        **error_responses(
            E.Unauthorized, E.StoreUnavailable, E.WorldServiceUnavailable, E.WorldServiceTimeout
        ),
    },
)
async def get_allocations(state: StateDep) -> Response:
    content, etag = await state.client.get_allocations()
    headers = {"ETag": etag} if etag else None
    return Response(content, media_type="application/json", headers=headers)
