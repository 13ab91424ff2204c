"""Request bodies as JSON bytes: orjson for large books, the standard library otherwise.

httpx's ``json=`` encodes with ``json.dumps`` (about a second for a million positions).
Large books are encoded by orjson instead, after a finiteness pass: orjson writes NaN and
Infinity as ``null``, which would turn a caller's mistake into a different 422 — such a body
goes through ``json.dumps(allow_nan=False)`` and fails here, as before.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["LARGE_BOOK", "encode_body"]

LARGE_BOOK = 10_000
"""Positions from which a body is encoded by orjson."""


def _finite(document: Any) -> bool:
    stack = [document]
    pop = stack.pop
    while stack:
        value = pop()
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind not in (str, int, bool, type(None)):
            return False  # not plain JSON data: let json.dumps decide
    return True


def encode_body(body: Any) -> bytes:
    """``body`` as compact JSON bytes (UTF-8, NaN/Infinity refused).

    Raises:
        ValueError: a NaN or Infinity in the body (as ``json.dumps(allow_nan=False)``).
        TypeError: a value that is not JSON data.
    """
    positions = body.get("positions") if isinstance(body, dict) else None
    if isinstance(positions, list) and len(positions) >= LARGE_BOOK and _finite(body):
        return orjson.dumps(body)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
