"""What the WorldService's ``GET /health`` says, read tolerantly (a legacy WorldService has
no ``/health``, or one without ``schema_versions``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["LEGACY_DETAIL", "WorldServiceProbe", "probe_from_health"]


@dataclass(frozen=True, slots=True)
class WorldServiceProbe:
    """What the last ``GET /health`` of the WorldService said (immutable; replaced whole).

    ``schema_versions`` is ``None`` while unknown (never probed, unreachable, or a legacy
    WorldService whose health does not list them). ``legacy`` is set when the WorldService
    predates capability reporting: its ``/health`` answered 404 (the original platform has
    none) or answered without ``schema_versions``.
    """

    status: str = "unknown"
    detail: str | None = None
    schema_versions: tuple[int, ...] | None = None
    legacy: bool = False
    alpha_metrics_required: bool | None = None
    compat_rebalance_v2: bool | None = None
    checked_at: float | None = None


def _int_list(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        return None
    return tuple(sorted(set(value)))


LEGACY_DETAIL = ("legacy WorldService: GET /health answered 404, so its schema versions are "
                 "unknown; the effective version is learned from its answers")


def probe_from_health(status_code: int, body: Any) -> WorldServiceProbe:
    now = time.time()
    if status_code == 404:
        # The original WorldService has no /health; its routes still work. Whether they do
        # is known from the plan/apply answers (see WorldServiceClient.routes_missing).
        return WorldServiceProbe(status="ok", detail=LEGACY_DETAIL, legacy=True, checked_at=now)
    if not isinstance(body, dict):
        return WorldServiceProbe(status="degraded" if status_code >= 400 else "ok",
                                 detail=f"/health answered HTTP {status_code} without JSON",
                                 checked_at=now)
    versions = _int_list(body.get("schema_versions"))
    required = body.get("alpha_metrics_required")
    compat = body.get("compat_rebalance_v2")
    ws_status = body.get("status")
    status = "ok" if status_code < 400 and ws_status in (None, "ok") else "degraded"
    legacy = status_code < 400 and versions is None
    detail = None if status == "ok" else f"worldservice reports status={ws_status!r}"
    if legacy and status == "ok":
        detail = "legacy WorldService: its /health lists no schema_versions"
    return WorldServiceProbe(
        status=status, detail=detail, schema_versions=versions,
        legacy=legacy,
        alpha_metrics_required=required if isinstance(required, bool) else None,
        compat_rebalance_v2=compat if isinstance(compat, bool) else None, checked_at=now,
    )
