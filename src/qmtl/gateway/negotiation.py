"""Plan-schema negotiation on the gateway side (pure functions, no I/O).

The version the gateway asks for::

    preferred = min(request.schema_version or configured, configured)
    sent      = best_common_version(preferred, ws_versions)   when the WS's versions are known
              = preferred                                     otherwise

A v>1 attempt is retried once as v1 (v2-only keys removed) **only when the refusal is about
the version** — anything else is the caller's answer and is relayed unchanged, because a
v1 retry would silently drop ``alpha_series``/``rebalance_intent`` and turn a refusal into
a 200:

* a 422 in validation-list form with an entry whose ``loc`` is ``schema_version`` itself
  (``extra_forbidden``, pydantic v1's ``value_error.extra``, ``less_than_equal``...), or a
  top-level v2-only key (``rebalance_intent``, ``alpha_series``) reported as *unknown*
  (``extra_forbidden``/``value_error.extra``, or a message saying extra/unexpected/not
  permitted). An error *inside* a v2 key, or about its value, is the caller's;
* a 400 whose body names ``schema_version`` and carries no code of ours (``E_…``): a
  legacy server's "unexpected field schema_version" in any shape (text, ``detail`` string,
  a foreign code).

Never retried: coded answers of ours (``E_SCHEMA_VERSION_REQUIRED`` wants *more*, not less;
"world w is frozen"...), 400s that do not name ``schema_version``, free-text or coded
422s (even when they mention ``rebalance_intent``), 409, 5xx.

Request bodies are prepared in ``outgoing``; responses are read in ``served``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from qmtl.contracts import V2_REQUEST_FIELDS, best_common_version

__all__ = ["choose_version", "error_detail", "is_version_refusal", "preferred_version"]

_UNKNOWN_FIELD_TYPES = frozenset({"extra_forbidden", "value_error.extra"})
_UNKNOWN_FIELD_WORDS = ("extra", "unexpected", "not permitted", "unknown")


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


def _field_path(loc: Any) -> list[str]:
    """``loc`` without the request-part prefix FastAPI adds (``["body", ...]``)."""
    if not isinstance(loc, list | tuple):
        return []
    path = [str(part) for part in loc]
    return path[1:] if path[:1] == ["body"] else path


def _refuses_the_version(err: Any) -> bool:
    """One validation entry refusing ``schema_version``, or a v2 key as an unknown field."""
    if not isinstance(err, dict):
        return False
    path = _field_path(err.get("loc"))
    if path == ["schema_version"]:
        return True
    if len(path) != 1 or path[0] not in V2_REQUEST_FIELDS:
        return False
    if err.get("type") in _UNKNOWN_FIELD_TYPES:
        return True
    message = str(err.get("msg", "")).lower()
    return any(word in message for word in _UNKNOWN_FIELD_WORDS)


def _is_our_code(detail: Any, depth: int = 3) -> bool:
    """Whether an error body carries an ``E_…`` code, at the top or nested a few levels
    (``{"error": {"code": ...}}``): such an answer is a decision, never a version refusal."""
    if depth <= 0:
        return False
    if isinstance(detail, dict):
        code = detail.get("code")
        if isinstance(code, str) and code.startswith("E_"):
            return True
        return any(_is_our_code(value, depth - 1) for value in detail.values())
    if isinstance(detail, list):
        return any(_is_our_code(value, depth - 1) for value in detail[:20])
    return False


def is_version_refusal(status: int, detail: Any) -> bool:
    """Whether a 400/422 answer to a v>1 request refuses the *version* (so v1 may work).

    Args:
        status: the WorldService's HTTP status.
        detail: the ``detail`` of its JSON body (a list of validation errors, a coded
            object, or text — see :func:`error_detail`).
    """
    if status == 422:
        return isinstance(detail, list) and any(_refuses_the_version(e) for e in detail)
    if status == 400:
        if _is_our_code(detail):
            return False
        text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
        return "schema_version" in text
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in an error body")


def error_detail(content: bytes) -> Any:
    """The ``detail`` of an error body (or the whole body/text when it has none).

    A body with NaN/Infinity is kept as text: relayed JSON must stay valid JSON.
    """
    try:
        parsed = json.loads(content, parse_constant=_refuse_constant)
    except ValueError:
        return content.decode("utf-8", "replace")[:2000]
    if isinstance(parsed, dict) and "detail" in parsed:
        return parsed["detail"]
    return parsed
