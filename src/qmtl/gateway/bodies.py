"""Request bodies of the gateway, parsed with the shared :mod:`qmtl.web.bodies` helper.

Execute validates the whole body; the plan/apply proxy reads only the envelope (see
``outgoing``) and leaves the rest to the WorldService.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import Depends, Request

from qmtl.contracts import (
    ARROW_STREAM_MEDIA_TYPE,
    MultiWorldRebalanceRequest,
    is_arrow_media_type,
)
from qmtl.contracts.errors import UnsupportedMediaType
from qmtl.web.bodies import parse_json, refuse_non_finite_literals
from qmtl.web.openapi import json_body

from .outgoing import OutgoingRequest, RequestEnvelope

__all__ = ["REQUEST_BODY_OPENAPI", "FullBody", "ProxyBody", "envelope_document",
           "parse_envelope", "parse_full", "read_envelope", "refuse_arrow"]

REQUEST_BODY_OPENAPI: dict[str, Any] = json_body(MultiWorldRebalanceRequest)
"""``openapi_extra`` documenting the body that :data:`FullBody`/:data:`ProxyBody` parse."""


def _validate(raw: bytes) -> MultiWorldRebalanceRequest:
    return MultiWorldRebalanceRequest.model_validate_json(raw or b"null")


_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ENVELOPE_KEYS = frozenset(RequestEnvelope.model_fields)
_KEY = msgspec.json.Encoder()


def envelope_document(raw: bytes | bytearray) -> bytes | None:
    """Only the envelope's keys of the JSON object ``raw`` (msgspec skips the rest, e.g. a
    million positions, without building them), or ``None`` when ``raw`` is not a JSON
    object: pydantic then parses it whole and says why.

    msgspec checks the syntax of what it skips, so a document it reads holds no
    ``NaN``/``Infinity`` literal anywhere.
    """
    try:
        top = _TOP.decode(raw)
    # RecursionError: nested deeper than msgspec goes; pydantic then refuses it naming why
    except (msgspec.DecodeError, RecursionError):
        return None
    return b"{" + b",".join(_KEY.encode(key) + b":" + bytes(value) for key, value in
                            top.items() if key in _ENVELOPE_KEYS) + b"}"


def _envelope(raw: bytes | bytearray) -> RequestEnvelope:
    small = envelope_document(raw)
    if small is None:  # not JSON msgspec reads: pydantic says why (or where a NaN is)
        envelope = RequestEnvelope.model_validate_json(raw or b"null")
        refuse_non_finite_literals(raw)
        return envelope
    return RequestEnvelope.model_validate_json(small)


async def read_envelope(raw: bytes | bytearray) -> OutgoingRequest:
    """The proxy's view of ``raw``: its envelope, with the bytes to forward.

    Raises:
        RequestValidationError: not a JSON object, a ``NaN``/``Infinity`` literal anywhere,
            or an invalid ``schema_version``/``run_id`` (422 list form).
    """
    return OutgoingRequest.from_envelope(raw, await parse_json(raw, _envelope,
                                                               refuses_literals=True))


def refuse_arrow(request: Request) -> None:
    """415 for an Arrow IPC body where the gateway reads JSON only (execute; plan and apply
    take Arrow through ``arrow_proxy``) — a clear refusal instead of a JSON parse error."""
    # --- Arrow IPC (h/arrow) ---
    if is_arrow_media_type(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            f"this route reads application/json only; {ARROW_STREAM_MEDIA_TYPE} is taken by "
            "/rebalancing/plan and /rebalancing/apply",
            content_type=ARROW_STREAM_MEDIA_TYPE, supported=["application/json"])


async def parse_full(request: Request) -> OutgoingRequest:
    """The body validated in full (execute needs the positions).

    Raises:
        UnsupportedMediaType: an Arrow body (415).
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    refuse_arrow(request)
    raw = await request.body()
    return OutgoingRequest.from_model(raw, await parse_json(raw, _validate))


async def parse_envelope(request: Request) -> OutgoingRequest:
    """Only the envelope (explain proxy: the WorldService validates the rest).

    Raises:
        UnsupportedMediaType: an Arrow body (415).
        RequestValidationError: as :func:`read_envelope`.
    """
    refuse_arrow(request)
    return await read_envelope(await request.body())


FullBody = Annotated[OutgoingRequest, Depends(parse_full)]
ProxyBody = Annotated[OutgoingRequest, Depends(parse_envelope)]
