"""A WorldService answer >= 400 as the error the gateway answers with, and which answers
count against the circuit breaker."""

from __future__ import annotations

from typing import Any

from qmtl.contracts.errors import QmtlError, UpstreamError, WorldServiceError

__all__ = ["BREAKER_FAILURE_STATUSES", "upstream_error"]

BREAKER_FAILURE_STATUSES = frozenset({502, 503, 504})
"""WorldService answers that count against the circuit breaker (it, or what is in front of
it, is unwell); every other answer proves it is up."""

_RELAYED_SERVER_STATUSES = frozenset({501, *BREAKER_FAILURE_STATUSES})


def upstream_error(status: int, detail: Any) -> QmtlError:
    """The error for a WorldService answer ``status`` >= 400 with ``detail``.

    4xx, 501 and 502/503/504 are relayed with their status and detail; a 500 (or any
    other 5xx) becomes 502 ``E_WORLDSERVICE_ERROR`` carrying both, so the caller never
    sees a bare 500 from the gateway.
    """
    if status >= 500 and status not in _RELAYED_SERVER_STATUSES:
        message = detail.get("message") if isinstance(detail, dict) else None
        if not isinstance(message, str):
            message = detail if isinstance(detail, str) else None
        reason = f": {message[:500]}" if message else ""
        return WorldServiceError(f"the WorldService failed with HTTP {status}{reason}",
                                 upstream_status=status, upstream=detail)
    return UpstreamError(status, detail)
