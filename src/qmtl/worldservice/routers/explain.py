"""``POST /rebalancing/explain``: why every delta of the plan exists (versionless)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from qmtl.contracts import MultiWorldRebalanceRequest, RebalanceExplanation
from qmtl.contracts.errors import (
    OverlayConfigInvalid,
    OverlayConfigRequired,
    PayloadTooLarge,
    PlanInputInvalid,
    RebalanceModeUnsupported,
    StoreUnavailable,
    Unauthorized,
)
from qmtl.web.errors import error_responses
from qmtl.web.openapi import json_body

from ..deps import RebalanceBody, Runtime
from ..explain import ExplainService
from ._openapi import json_response

__all__ = ["router"]

router = APIRouter(prefix="/rebalancing", tags=["rebalancing"])


@router.post(
    "/explain",
    summary="Explain a plan: raw, netted, crossed, rounded and dust figures per key",
    response_class=Response,
    responses={
        200: {
            "model": RebalanceExplanation,
            "description": "The explain document (versionless; the plan documents do not change)",
        },
        **error_responses(
            Unauthorized,
            PayloadTooLarge,
            OverlayConfigRequired,
            OverlayConfigInvalid,
            PlanInputInvalid,
            RebalanceModeUnsupported,
            StoreUnavailable,
        ),
    },
    openapi_extra=json_body(MultiWorldRebalanceRequest),
)
async def explain(body: RebalanceBody, runtime: Runtime) -> Response:
    return json_response(await ExplainService(runtime.planning).explain(body))
