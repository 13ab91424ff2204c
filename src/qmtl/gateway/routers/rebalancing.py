"""``/rebalancing/plan``, ``/rebalancing/apply`` (negotiated proxy) and ``/rebalancing/execute``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse

from qmtl.contracts import (
    SERVED_VERSION_HEADER,
    ApplyResponse,
    ExecuteResponse,
    MultiWorldRebalanceResponse,
)
from qmtl.contracts import errors as E
from qmtl.web.errors import error_responses

from ..arrow_proxy import ArrowBody, PlanProxyBody, proxy_arrow
from ..bodies import REQUEST_BODY_OPENAPI, FullBody
from ..deps import StateDep
from ..execute import ExecuteFlags, allow_live_header
from ..served import WorldServiceBadResponse
from ..worldservice_client import PlanResult, RelayedPlan

__all__ = ["router"]

router = APIRouter(prefix="/rebalancing", tags=["rebalancing"])

_UPSTREAM = (
    E.SchemaVersionRequired, E.Unauthorized, E.PayloadTooLarge, E.OverlayConfigRequired,
    E.OverlayConfigInvalid, E.RebalanceModeUnsupported, E.WorldServiceUnavailable,
    E.WorldServiceTimeout, E.WorldServiceError, WorldServiceBadResponse,
    E.UnsupportedMediaType,
)


def _proxied(result: PlanResult | RelayedPlan) -> Response:
    headers = {name.title(): value for name, value in result.headers.items()}
    headers[SERVED_VERSION_HEADER] = str(result.served_version)
    if isinstance(result, RelayedPlan) and result.chunks is not None:
        return StreamingResponse(result.chunks, media_type="application/json", headers=headers)
    return Response(result.content, media_type="application/json", headers=headers)


@router.post(
    "/plan",
    summary="Plan a rebalance through the WorldService (schema version negotiated)",
    openapi_extra=REQUEST_BODY_OPENAPI,
    responses={200: {"model": MultiWorldRebalanceResponse},
               **error_responses(*_UPSTREAM, E.PlanInputInvalid)},
)
async def plan(request: PlanProxyBody, state: StateDep) -> Response:
    """The WorldService's plan at the best version both sides serve; WorldService errors
    come back with their status and detail unchanged."""
    if isinstance(request, ArrowBody):  # --- Arrow IPC (h/arrow) ---
        return await proxy_arrow(state.client, request, route="plan")
    return _proxied(await state.client.relay_rebalance("plan", request))


@router.post(
    "/apply",
    summary="Apply a rebalance through the WorldService (schema version negotiated)",
    openapi_extra=REQUEST_BODY_OPENAPI,
    responses={200: {"model": ApplyResponse},
               **error_responses(*_UPSTREAM, E.PlanInputInvalid, E.RunIdConflict,
                                 E.EtagMismatch, E.StoreUnavailable)},
)
async def apply(request: PlanProxyBody, state: StateDep,
                if_match: Annotated[str | None, Header()] = None) -> Response:
    """Record the plan at the WorldService; ``If-Match`` is passed on and
    ``Idempotent-Replayed``/``ETag`` come back."""
    if isinstance(request, ArrowBody):  # --- Arrow IPC (h/arrow) ---
        return await proxy_arrow(state.client, request, route="apply", if_match=if_match)
    return _proxied(await state.client.relay_rebalance("apply", request, if_match=if_match))


@router.post(
    "/execute",
    summary="Turn a plan into orders; dry run by default, submit to the commit log",
    openapi_extra=REQUEST_BODY_OPENAPI,
    responses={200: {"model": ExecuteResponse},
               **error_responses(*_UPSTREAM, E.PlanInputInvalid, E.PermissionDenied,
                                 E.SharedAccountDisabled, E.SharedAccountPolicyViolation,
                                 E.OverlayExecutionAmbiguous, E.OverlayExecutionUnmapped,
                                 E.RunIdConflict, E.CommitLogUnavailable)},
)
async def execute(
    request: FullBody,
    state: StateDep,
    per_strategy: Annotated[bool, Query(description="also build orders per strategy")] = False,
    shared_account: Annotated[bool, Query(description="net orders across worlds")] = False,
    submit: Annotated[bool, Query(description="write the orders to the commit log")] = False,
    x_allow_live: Annotated[str | None, Header(description="must be 'true' to submit")] = None,
) -> Response:
    """Orders per world (and per strategy / netted globally when asked); ``submit=true``
    writes them atomically to the commit log (needs ``X-Allow-Live: true``)."""
    outcome = await state.execute.execute(
        request,
        flags=ExecuteFlags(per_strategy=per_strategy, shared_account=shared_account,
                           submit=submit),
        allow_live=allow_live_header(x_allow_live),
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(outcome.content, media_type="application/json", headers=headers)
