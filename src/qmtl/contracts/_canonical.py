"""Canonical JSON: the byte form that hashes, etags and idempotency keys are taken over."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "sha256_hex"]


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, NaN refused — equal documents give equal bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sha256_hex(value: Any) -> str:
    """SHA-256 of :func:`canonical_json` as lowercase hex."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
