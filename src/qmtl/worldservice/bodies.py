"""Request bodies: JSON parsing straight from bytes and 422 errors in FastAPI's list form.

Bodies are validated with ``model_validate_json`` (pydantic's own JSON parser: one pass, no
intermediate Python objects), off the event loop when they are large. Errors keep FastAPI's
shape — ``{"detail": [{"loc": ["body", …], "msg": …, "type": …}]}`` — without echoing the
offending input (it may be huge, or NaN, which JSON cannot carry).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import anyio.to_thread
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from .gcpause import gc_paused

__all__ = ["OFFLOAD_BYTES", "parse_body", "validation_error", "validation_errors"]

M = TypeVar("M", bound=BaseModel)

OFFLOAD_BYTES = 1 << 20
"""Bodies larger than this (bytes) are parsed in a worker thread."""


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def validation_errors(exc: ValidationError, *, prefix: Sequence[str | int] = ("body",)
                      ) -> list[dict[str, Any]]:
    """FastAPI-style error entries for ``exc``: ``loc`` prefixed, no ``input``, safe ``ctx``."""
    errors: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False, include_input=False):
        entry: dict[str, Any] = {
            "type": err["type"],
            "loc": [*prefix, *err["loc"]],
            "msg": err["msg"],
        }
        if "ctx" in err:
            entry["ctx"] = {k: _json_safe(v) for k, v in err["ctx"].items()}
        errors.append(entry)
    return errors


def validation_error(loc: Sequence[str | int], msg: str, *,
                     type_: str = "value_error") -> RequestValidationError:
    """A one-entry 422 naming the field at ``loc`` (e.g. ``("body", "world_alloc")``)."""
    return RequestValidationError([{"type": type_, "loc": list(loc), "msg": msg}])


def _validate_large(model: type[M], raw: bytes) -> M:
    with gc_paused():
        return model.model_validate_json(raw)


async def parse_body(raw: bytes, model: type[M]) -> M:
    """Validate JSON ``raw`` as ``model``.

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    try:
        if len(raw) > OFFLOAD_BYTES:
            return await anyio.to_thread.run_sync(_validate_large, model, raw)
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(validation_errors(exc)) from exc
