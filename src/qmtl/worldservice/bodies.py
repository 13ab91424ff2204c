"""Request bodies of the WorldService, parsed with the shared :mod:`qmtl.web.bodies` helper."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from qmtl.web.bodies import parse_json, validation_error

__all__ = ["parse_body", "validation_error"]

M = TypeVar("M", bound=BaseModel)


async def parse_body(raw: bytes, model: type[M]) -> M:
    """Validate JSON ``raw`` as ``model``.

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    return await parse_json(raw, model.model_validate_json)
