"""The columnar branch of ``POST /rebalancing/plan`` (Arrow bodies or Arrow answers)."""

from __future__ import annotations

from fastapi import Response

from qmtl.contracts import ARROW_STREAM_MEDIA_TYPE, MultiWorldRebalanceRequest
from qmtl.engine import PositionBook
from qmtl.engine.columns import ColumnRequest

from ..arrow_bodies import ArrowPlanRequest
from ..arrow_planning import serve_columns
from ..deps import WorldServiceRuntime
from ._openapi import json_response

__all__ = ["arrow_plan"]


async def arrow_plan(
    body: MultiWorldRebalanceRequest | ColumnRequest | ArrowPlanRequest,
    runtime: WorldServiceRuntime,
    *,
    arrow: bool,
) -> Response:
    """Plan a columnar body, or a JSON body whose caller asked for Arrow."""
    if isinstance(body, ArrowPlanRequest | ColumnRequest):
        request, book = body.request, body.book
    else:
        request = body.model_copy(update={"positions": []})
        book = PositionBook.from_positions(body.positions)
    encoded = await serve_columns(runtime.planning, request, book, arrow=arrow)
    if arrow:
        return Response(content=encoded, media_type=ARROW_STREAM_MEDIA_TYPE)
    return json_response(encoded)
