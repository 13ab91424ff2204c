"""Shared type aliases for the wire contract.

Every number on the wire is a finite JSON number (SPEC 2): the aliases below are strict
(a string or a boolean is not a number) and reject NaN and Infinity.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "FiniteFloat",
    "Identifier",
    "MAX_IDENTIFIER_LENGTH",
    "NonNegativeFloat",
    "PositiveFloat",
    "Ratio",
    "SchemaVersion",
    "StrategyId",
    "Symbol",
    "Venue",
    "WorldId",
    "check_identifier",
]


# C0/C1 control characters, DEL, the Unicode line/paragraph separators and lone surrogates
# (which no database or log line can carry: PostgreSQL refuses NUL in text).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


MAX_IDENTIFIER_LENGTH = 256
"""Characters an id may have: a database index holds ids of up to ~2,700 bytes (PostgreSQL's
btree row limit), i.e. 675 four-byte characters; 256 leaves room for composite keys."""


def check_identifier(value: str) -> str:
    """``value`` if it is non-blank printable text without control characters, of at most
    :data:`MAX_IDENTIFIER_LENGTH` characters (ids in paths and queries are checked here;
    in bodies the length is a schema constraint).

    :raises ValueError: blank, too long, or a control character (NUL, tab, newline, DEL...).
    """
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(f"must have at most {MAX_IDENTIFIER_LENGTH} characters")
    # str.isprintable() is one C pass and true for nearly every real id; only the rest
    # pays for the exact rule (non-ASCII spaces and marks are allowed).
    if not value.isprintable() and _UNPRINTABLE.search(value):
        raise ValueError("must be printable text without control characters")
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


Identifier = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_IDENTIFIER_LENGTH),
                       AfterValidator(check_identifier)]
"""Non-blank printable text without control characters, at most 256 characters (SPEC 2):
world, strategy, symbol, venue and run ids, and the keys of every map keyed by them."""

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
