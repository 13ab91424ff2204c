"""Request and response media types of plan and apply: JSON, or Arrow IPC (docs/arrow.md).

``Content-Type`` absent, ``application/json`` or any ``…+json`` is JSON;
``application/vnd.apache.arrow.stream`` is Arrow; anything else is a 415
``E_UNSUPPORTED_MEDIA_TYPE`` (so is Arrow when pyarrow is not installed). ``Accept`` only
switches the plan response to Arrow when it names the Arrow type; anything else gets JSON.
"""

from __future__ import annotations

from typing import Literal

from qmtl.contracts import (
    ARROW_STREAM_MEDIA_TYPE,
    MultiWorldRebalanceRequest,
    is_arrow_media_type,
    require_pyarrow,
)
from qmtl.contracts.errors import PayloadTooLarge, UnsupportedMediaType
from qmtl.engine.columns import ColumnRequest

from .arrow_bodies import ArrowPlanRequest, parse_arrow_body
from .bodies import parse_body, parse_plan_body
from .planning import as_columns

__all__ = [
    "BodyFormat",
    "body_format",
    "check_position_limit",
    "read_apply_body",
    "read_plan_body",
    "read_request_body",
    "wants_arrow",
]

BodyFormat = Literal["json", "arrow"]


def body_format(content_type: str | None) -> BodyFormat:
    """The format of a request body from its ``Content-Type``.

    Raises:
        UnsupportedMediaType: neither JSON nor Arrow, or Arrow without pyarrow.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("", "application/json") or media.endswith("+json"):
        return "json"
    if is_arrow_media_type(media):
        require_pyarrow()
        return "arrow"
    raise UnsupportedMediaType(
        f"Content-Type {media[:100]!r} is not supported: send application/json or "
        f"{ARROW_STREAM_MEDIA_TYPE}",
        content_type=media[:100],
        supported=["application/json", ARROW_STREAM_MEDIA_TYPE],
    )


def wants_arrow(accept: str | None) -> bool:
    """True when ``Accept`` asks for the Arrow stream (pyarrow must then be installed).

    Raises:
        UnsupportedMediaType: Arrow asked for and pyarrow is not installed.
    """
    if not is_arrow_media_type(accept):
        return False
    require_pyarrow()
    return True


def check_position_limit(count: int, limit: int) -> None:
    """413 when a body holds more than ``limit`` positions."""
    if count > limit:
        raise PayloadTooLarge(
            f"{count} positions is over the limit of {limit} (worldservice.server.max_positions)",
            positions=count,
            limit_positions=limit,
        )


async def _read_arrow(raw: bytes, max_positions: int) -> ArrowPlanRequest:
    arrow = await parse_arrow_body(raw)
    check_position_limit(len(arrow), max_positions)
    return arrow


async def read_request_body(
    raw: bytes, content_type: str | None, *, max_positions: int
) -> MultiWorldRebalanceRequest | ArrowPlanRequest:
    """A validated JSON request (wire models), or a decoded Arrow request (positions as
    columns).

    Raises:
        UnsupportedMediaType: 415; RequestValidationError: 422; PayloadTooLarge: 413.
    """
    if body_format(content_type) == "arrow":
        return await _read_arrow(raw, max_positions)
    body = await parse_body(raw, MultiWorldRebalanceRequest)
    check_position_limit(len(body.positions), max_positions)
    return body


async def read_plan_body(
    raw: bytes, content_type: str | None, *, max_positions: int
) -> MultiWorldRebalanceRequest | ColumnRequest | ArrowPlanRequest:
    """As :func:`read_request_body`, but a JSON body goes through the fast reader and keeps
    its positions in columns when it can (``bodies.parse_plan_body``)."""
    if body_format(content_type) == "arrow":
        return await _read_arrow(raw, max_positions)
    body = await parse_plan_body(raw)
    check_position_limit(len(body) if isinstance(body, ColumnRequest) else len(body.positions),
                         max_positions)
    return body


async def read_apply_body(
    raw: bytes, content_type: str | None, *, max_positions: int
) -> ColumnRequest:
    """As :func:`read_plan_body`, always with the positions in columns: apply plans, hashes
    and records from the book whichever way the body came (fast reader, pydantic fallback,
    Arrow)."""
    body = await read_plan_body(raw, content_type, max_positions=max_positions)
    if isinstance(body, ColumnRequest):
        return body
    if isinstance(body, ArrowPlanRequest):
        return ColumnRequest(request=body.request, book=body.book)
    return await as_columns(body)
