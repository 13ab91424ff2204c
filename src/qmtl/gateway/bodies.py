"""Request bodies parsed straight from bytes, with 422 errors in FastAPI's list form.

Execute validates the whole body; the plan/apply proxy reads only the envelope (see
``outgoing``).

``model_validate_json`` (pydantic's JSON parser) validates in one pass without building
Python objects first, refuses NaN/Infinity as ``finite_number`` errors, and runs in a
worker thread for large bodies so the event relay keeps its latency. Error entries are
``{"type", "loc": ["body", …], "msg"}`` — the offending input is not echoed (it may be huge,
or NaN, which JSON cannot carry). (The WorldService has the same helper; both could move to
``qmtl.web``.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from qmtl.contracts import MultiWorldRebalanceRequest

from .outgoing import OutgoingRequest, RequestEnvelope

M = TypeVar("M", bound=BaseModel)

__all__ = ["OFFLOAD_BYTES", "REQUEST_BODY_OPENAPI", "FullBody", "ProxyBody", "parse_envelope",
           "parse_full"]

OFFLOAD_BYTES = 1 << 20
"""Bodies larger than this (bytes) are parsed in a worker thread."""

REQUEST_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/MultiWorldRebalanceRequest"}}},
    }
}
"""``openapi_extra`` documenting the body that :data:`RebalanceBody` parses by hand."""


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        entry: dict[str, Any] = {"type": err["type"], "loc": ["body", *err["loc"]],
                                 "msg": err["msg"]}
        if "ctx" in err:
            entry["ctx"] = {k: _json_safe(v) for k, v in err["ctx"].items()}
        out.append(entry)
    return out


def _validate(raw: bytes) -> MultiWorldRebalanceRequest:
    return MultiWorldRebalanceRequest.model_validate_json(raw or b"null")


def _envelope(raw: bytes) -> RequestEnvelope:
    return RequestEnvelope.model_validate_json(raw or b"null")


async def _parse(raw: bytes, parse: Callable[[bytes], M]) -> M:
    try:
        if len(raw) > OFFLOAD_BYTES:
            return await anyio.to_thread.run_sync(parse, raw)
        return parse(raw)
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc)) from exc


async def parse_full(request: Request) -> OutgoingRequest:
    """The body validated in full (execute needs the positions).

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    raw = await request.body()
    return OutgoingRequest.from_model(raw, await _parse(raw, _validate))


async def parse_envelope(request: Request) -> OutgoingRequest:
    """Only the envelope (plan/apply proxy: the WorldService validates the rest).

    Raises:
        RequestValidationError: not a JSON object, or an invalid ``schema_version``/``run_id``.
    """
    raw = await request.body()
    return OutgoingRequest.from_envelope(raw, await _parse(raw, _envelope))


FullBody = Annotated[OutgoingRequest, Depends(parse_full)]
ProxyBody = Annotated[OutgoingRequest, Depends(parse_envelope)]
