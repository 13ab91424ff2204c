"""``POST /rebalancing/explain``: the WorldService's explain document, proxied.

Same auth and body reading as the plan proxy (only the envelope is checked here; the
WorldService validates the rest). The document is versionless: the caller's bytes go
through unchanged, and WorldService errors come back with their status and detail.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from qmtl.contracts import RebalanceExplanation
from qmtl.contracts import errors as E
from qmtl.web.errors import error_responses

from ..bodies import REQUEST_BODY_OPENAPI, ProxyBody
from ..deps import StateDep
from ..served import WorldServiceBadResponse

__all__ = ["router"]

router = APIRouter(prefix="/rebalancing", tags=["rebalancing"])


@router.post(
    "/explain",
    summary="Explain a plan through the WorldService (versionless document)",
    openapi_extra=REQUEST_BODY_OPENAPI,
    responses={
        200: {"model": RebalanceExplanation},
        **error_responses(
            E.Unauthorized,
            E.PayloadTooLarge,
            E.OverlayConfigRequired,
            E.OverlayConfigInvalid,
            E.PlanInputInvalid,
            E.RebalanceModeUnsupported,
            E.StoreUnavailable,
            E.WorldServiceUnavailable,
            E.WorldServiceTimeout,
            WorldServiceBadResponse,
        ),
    },
)
async def explain(request: ProxyBody, state: StateDep) -> Response:
    """Why every world delta of the plan exists: raw, netted, crossed, rounded, dust."""
    return Response(
        await state.client.post_rebalance_explain(request), media_type="application/json"
    )
