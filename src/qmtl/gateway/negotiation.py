"""Plan-schema negotiation on the gateway side (pure functions, no I/O).

The version the gateway asks for::

    preferred = min(request.schema_version or configured, configured)
    sent      = best_common_version(preferred, ws_versions)   when the WS's versions are known
              = preferred                                     otherwise

A v>1 attempt refused with 400/422 *because of the version* is retried once as v1 with the
v2-only keys removed. A 422 is a version refusal only when one of its errors rejects
``schema_version`` or reports a v2 key as unknown (``extra_forbidden``); a 422 about other
fields, or about the *value* of a v2 field (e.g. unusable ``alpha_series``), is the
caller's error and is relayed (retrying as v1 would silently drop the data and hide it).
A 400 is a version refusal unless it is ``E_SCHEMA_VERSION_REQUIRED`` (that WorldService
wants *more*, not less).

Request bodies are prepared in ``outgoing``; responses are read in ``served``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from qmtl.contracts import V2_REQUEST_FIELDS, best_common_version

__all__ = ["choose_version", "error_detail", "is_version_refusal", "preferred_version"]


def preferred_version(requested: int | None, *, configured: int) -> int:
    """``min(requested or configured, configured)``: a client may ask for less, never more."""
    return min(requested or configured, configured)


def choose_version(preferred: int, *, served: Sequence[int] | None) -> int:
    """The version to send: the best common one when the WorldService's list is known
    (``preferred`` when there is none in common, so the WorldService explains why)."""
    if served:
        best = best_common_version(preferred, list(served))
        if best is not None:
            return best
    return preferred


def _mentions_v2_field(value: Any) -> bool:
    return any(field in str(value) for field in V2_REQUEST_FIELDS)


def _refuses_v2_field(err: Any) -> bool:
    """A validation error saying a v2 key is unknown, or that ``schema_version`` is too high
    — not one about a v2 *value* (bad ``alpha_series`` data is the caller's error)."""
    if not isinstance(err, dict):
        return False
    loc = [str(part) for part in err.get("loc", [])]
    if "schema_version" in loc:
        return True
    return err.get("type") == "extra_forbidden" and any(p in V2_REQUEST_FIELDS for p in loc)


def is_version_refusal(status: int, detail: Any) -> bool:
    """Whether a 400/422 answer to a v>1 request refuses the *version* (so v1 may work).

    Args:
        status: the WorldService's HTTP status.
        detail: the ``detail`` of its JSON body (a list of validation errors, a coded
            object, or text).
    """
    if status == 400:
        if isinstance(detail, dict) and detail.get("code") == "E_SCHEMA_VERSION_REQUIRED":
            return False
        return True
    if status != 422:
        return False
    if isinstance(detail, list):
        return any(_refuses_v2_field(err) for err in detail)
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        # A coded 422 (overlay config, shared account...) is about the plan, not the version,
        # unless a legacy service names the field it does not know.
        return _mentions_v2_field(detail.get("message", ""))
    return _mentions_v2_field(detail)


def error_detail(content: bytes) -> Any:
    """The ``detail`` of an error body (or the whole body/text when it has none)."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")[:2000]
    if isinstance(parsed, dict) and "detail" in parsed:
        return parsed["detail"]
    return parsed
