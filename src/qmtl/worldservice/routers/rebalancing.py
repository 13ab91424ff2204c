"""``POST /rebalancing/plan`` and ``POST /rebalancing/apply``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from qmtl.contracts import (
    SERVED_VERSION_HEADER,
    ApplyResponse,
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
)
from qmtl.contracts.errors import (
    EtagMismatch,
    InputNotStorable,
    OverlayConfigInvalid,
    OverlayConfigRequired,
    PayloadTooLarge,
    PlanInputInvalid,
    RebalanceModeUnsupported,
    RunIdConflict,
    SchemaVersionRequired,
    StoreUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from qmtl.engine.columns import ColumnRequest
from qmtl.web.errors import error_responses
from qmtl.web.openapi import json_body

from ..arrow_bodies import ArrowPlanRequest
from ..deps import ApplyBody, IfMatch, PlanBody, Runtime
from ..etags import etag_header
from ..media import wants_arrow
from ._arrow import arrow_plan
from ._openapi import json_response

router = APIRouter(prefix="/rebalancing", tags=["rebalancing"])

_PLAN_ERRORS = (SchemaVersionRequired, Unauthorized, PayloadTooLarge, OverlayConfigRequired,
                OverlayConfigInvalid, PlanInputInvalid, RebalanceModeUnsupported,
                StoreUnavailable, UnsupportedMediaType)


@router.post(
    "/plan",
    summary="Compute a multi-world rebalancing plan",
    response_class=Response,
    responses={200: {"model": MultiWorldRebalanceResponse,
                     "description": "The plan at the served schema version (v1 has no "
                                    "alpha_metrics / rebalance_intent keys)"},
               **error_responses(*_PLAN_ERRORS)},
    openapi_extra=json_body(MultiWorldRebalanceRequest),
)
async def plan(body: PlanBody, runtime: Runtime,
               accept: Annotated[str | None, Header(include_in_schema=False)] = None
               ) -> Response:
    # --- Arrow IPC: columnar bodies and Arrow answers take the Arrow path.
    if isinstance(body, ArrowPlanRequest) or wants_arrow(accept):
        return await arrow_plan(body, runtime, arrow=wants_arrow(accept))
    if isinstance(body, ColumnRequest):
        served = await runtime.planning.plan(body.request, book=body.book)
    else:
        served = await runtime.planning.plan(body)
    return json_response(served.encoded, headers={SERVED_VERSION_HEADER: str(served.version)})


@router.post(
    "/apply",
    summary="Record an approved plan (idempotent by run_id) and publish its events",
    response_class=Response,
    responses={200: {"model": ApplyResponse,
                     "description": "The served plan plus run_id and the allocation etag; "
                                    "header Idempotent-Replayed: true on a replay"},
               **error_responses(*_PLAN_ERRORS, RunIdConflict, EtagMismatch,
                                                  InputNotStorable)},
    openapi_extra=json_body(MultiWorldRebalanceRequest),
)
async def apply(body: ApplyBody, runtime: Runtime, if_match: IfMatch = None) -> Response:
    outcome = await runtime.applier.apply(body, if_match=if_match)
    headers = {"ETag": etag_header(outcome.etag), SERVED_VERSION_HEADER: str(outcome.version)}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(outcome.body, headers=headers)
