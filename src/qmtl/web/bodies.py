"""JSON request bodies parsed straight from bytes, with 422 errors in FastAPI's list form.

Both services validate bodies with pydantic's own JSON parser (``model_validate_json``: one
pass, no intermediate Python objects; NaN/Infinity refused as ``finite_number`` errors), in a
worker thread when the body is large so the event relay keeps its latency. Errors keep
FastAPI's shape — ``{"detail": [{"loc": ["body", …], "msg": …, "type": …}]}`` — without
echoing the offending input (it may be huge, or NaN, which JSON cannot carry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio.to_thread
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from .errors import validation_entry
from .gcpause import gc_paused

__all__ = ["OFFLOAD_BYTES", "parse_json", "validation_error", "validation_errors"]

T = TypeVar("T")

OFFLOAD_BYTES = 1 << 20
"""Bodies larger than this (bytes) are parsed in a worker thread with the cyclic GC paused."""


def validation_errors(exc: ValidationError, *, prefix: Sequence[str | int] = ("body",)
                      ) -> list[dict[str, Any]]:
    """FastAPI-style error entries for ``exc``: ``loc`` prefixed, no ``input``, safe ``ctx``."""
    return [validation_entry(err, prefix=prefix)
            for err in exc.errors(include_url=False, include_input=False)]


def validation_error(loc: Sequence[str | int], msg: str, *,
                     type_: str = "value_error") -> RequestValidationError:
    """A one-entry 422 naming the field at ``loc`` (e.g. ``("body", "world_alloc")``)."""
    return RequestValidationError([{"type": type_, "loc": list(loc), "msg": msg}])


def _parse_large(parse: Callable[[bytes], T], raw: bytes) -> T:
    with gc_paused():
        return parse(raw)


async def parse_json(raw: bytes, parse: Callable[[bytes], T]) -> T:
    """Run ``parse`` (e.g. ``Model.model_validate_json``) on ``raw``.

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    try:
        if len(raw) > OFFLOAD_BYTES:
            return await anyio.to_thread.run_sync(_parse_large, parse, raw)
        return parse(raw)
    except ValidationError as exc:
        raise RequestValidationError(validation_errors(exc)) from exc
