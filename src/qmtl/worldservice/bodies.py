"""Request bodies of the WorldService, parsed with the shared :mod:`qmtl.web.bodies` helper."""

from __future__ import annotations

from typing import TypeVar

import anyio.to_thread
from pydantic import BaseModel

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.engine.columns import ColumnRequest, decode_request
from qmtl.web.bodies import OFFLOAD_BYTES, parse_json, validation_error
from qmtl.web.gcpause import gc_paused

__all__ = ["parse_body", "parse_plan_body", "validation_error"]

M = TypeVar("M", bound=BaseModel)


async def parse_body(raw: bytes, model: type[M]) -> M:
    """Validate JSON ``raw`` as ``model``.

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    return await parse_json(raw, model.model_validate_json)


def _decode(raw: bytes) -> ColumnRequest | None:
    # Paused whatever the size, as for planning: a body just under the offload size still
    # creates some 10^5 objects at once (see ``qmtl.web.gcpause``).
    with gc_paused():
        return decode_request(raw)


async def parse_plan_body(raw: bytes) -> ColumnRequest | MultiWorldRebalanceRequest:
    """A plan body with its positions in columns (:mod:`qmtl.engine.columns`), or — when
    the fast reader is not sure the body is valid — validated by the model, which raises
    the 422 list or accepts it (then the positions are objects, as before).

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    if len(raw) > OFFLOAD_BYTES:
        fast = await anyio.to_thread.run_sync(_decode, raw)
    else:
        fast = _decode(raw)
    if fast is not None:
        return fast
    return await parse_body(raw, MultiWorldRebalanceRequest)
