"""``GET /allocations[?world_id=]`` and ``POST /allocations``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator

from qmtl.contracts import AllocationState, AllocationUpsert, check_identifier
from qmtl.contracts.errors import (
    EtagMismatch,
    InputNotStorable,
    NotFound,
    RunIdConflict,
    StoreUnavailable,
    Unauthorized,
)
from qmtl.web.errors import error_responses
from qmtl.web.openapi import json_body

from ..deps import AllocationBody, IfMatch, Runtime
from ..etags import etag_header
from ._openapi import json_response

router = APIRouter(prefix="/allocations", tags=["allocations"])

# The body's id rule (SPEC 2): a NUL would reach the database as a 503.
WorldIdQuery = Annotated[Annotated[str, AfterValidator(check_identifier)] | None,
                         Query(min_length=1)]


@router.get(
    "",
    summary="The stored allocation state (the next plan's 'before'), with its ETag",
    response_class=Response,
    responses={200: {"model": AllocationState},
               **error_responses(Unauthorized, NotFound, StoreUnavailable)},
)
async def get_allocations(
    runtime: Runtime, world_id: WorldIdQuery = None
) -> Response:
    state = await runtime.allocations.get(world_id=world_id)
    return json_response(state.model_dump_json().encode(),
                         headers={"ETag": etag_header(state.etag)})


@router.post(
    "",
    summary="Merge world allocations into the stored state (If-Match, run_id idempotency)",
    response_class=Response,
    responses={200: {"model": AllocationState},
               **error_responses(Unauthorized, RunIdConflict, EtagMismatch, StoreUnavailable,
                                 InputNotStorable)},
    openapi_extra=json_body(AllocationUpsert),
)
async def upsert_allocations(body: AllocationBody, runtime: Runtime,
                             if_match: IfMatch = None) -> Response:
    outcome = await runtime.allocations.upsert(body, if_match=if_match)
    headers = {"ETag": etag_header(outcome.etag)}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(outcome.body, headers=headers)
