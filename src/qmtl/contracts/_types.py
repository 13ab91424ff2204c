"""Shared type aliases for the wire contract.

Every number on the wire is a finite JSON number (SPEC 2): the aliases below are strict
(a string or a boolean is not a number) and reject NaN and Infinity.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "FiniteFloat",
    "Identifier",
    "NonNegativeFloat",
    "PositiveFloat",
    "Ratio",
    "SchemaVersion",
    "StrategyId",
    "Symbol",
    "Venue",
    "WorldId",
]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


Identifier = Annotated[str, Field(strict=True, min_length=1), AfterValidator(_non_blank)]
"""A non-empty, non-blank string."""

WorldId = Identifier
StrategyId = Identifier
Symbol = Identifier
Venue = Identifier

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""Any finite number (integers are accepted, strings and booleans are not)."""

NonNegativeFloat = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
PositiveFloat = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
Ratio = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
"""A fraction of total equity in [0, 1]."""

SchemaVersion = Annotated[int, Field(strict=True, ge=1)]
"""A plan schema version: a strict integer >= 1 ("2", 2.5 and true are rejected)."""
