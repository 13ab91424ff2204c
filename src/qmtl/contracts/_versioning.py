"""Plan-schema version negotiation and rendering (SPEC 2.5).

    served = min(requested or 1, 2 if compat_rebalance_v2 else 1)

``alpha_metrics_required`` refuses requests below 2 (400, message names
``schema_version>=2``) and is only valid together with ``compat_rebalance_v2``.
"""

from __future__ import annotations

from typing import Any

from ._request import V2_REQUEST_FIELDS
from ._response import MultiWorldRebalanceResponse
from .errors import ConfigError, SchemaVersionRequired

__all__ = [
    "LATEST_SCHEMA_VERSION",
    "SERVED_VERSION_HEADER",
    "V2_ONLY_RESPONSE_KEYS",
    "best_common_version",
    "check_version_config",
    "negotiate_schema_version",
    "render_response",
    "served_schema_versions",
    "to_v1_request_body",
]

LATEST_SCHEMA_VERSION = 2
SERVED_VERSION_HEADER = "Qmtl-Schema-Version"
"""Response header of a plan/apply JSON answer rendered by our WorldService: the served
version. The gateway relays such an answer while it arrives and checks it at the end."""
V2_ONLY_RESPONSE_KEYS: frozenset[str] = frozenset({"alpha_metrics", "rebalance_intent"})


def check_version_config(*, compat_rebalance_v2: bool, alpha_metrics_required: bool,
                         section: str = "worldservice.server") -> None:
    """Refuse ``alpha_metrics_required`` without ``compat_rebalance_v2``.

    Raises:
        ConfigError: naming both keys.
    """
    if alpha_metrics_required and not compat_rebalance_v2:
        raise ConfigError(
            f"{section}.alpha_metrics_required=true needs {section}.compat_rebalance_v2=true "
            "(a WorldService cannot require a schema version it does not serve)",
            key=f"{section}.alpha_metrics_required",
        )


def served_schema_versions(*, compat_rebalance_v2: bool) -> list[int]:
    """The versions a WorldService serves, as reported on its ``/health``."""
    return [1, 2] if compat_rebalance_v2 else [1]


def negotiate_schema_version(requested: int | None, *, compat_rebalance_v2: bool,
                             alpha_metrics_required: bool) -> int:
    """The version a WorldService serves for a request.

    Args:
        requested: the request's ``schema_version`` (``None`` means 1).
        compat_rebalance_v2: whether v2 is served at all.
        alpha_metrics_required: whether requests below v2 are refused.

    Returns:
        ``min(requested or 1, 2 if compat_rebalance_v2 else 1)``.

    Raises:
        SchemaVersionRequired: v2 is required and the request asked for less.
    """
    wanted = requested or 1
    if alpha_metrics_required and wanted < 2:
        raise SchemaVersionRequired(requested_schema_version=wanted, required_schema_version=2)
    return min(wanted, LATEST_SCHEMA_VERSION if compat_rebalance_v2 else 1)


def best_common_version(preferred: int, served: list[int] | None) -> int | None:
    """The highest version <= ``preferred`` that a peer serves (``None`` when unknown/none)."""
    if not served:
        return None
    candidates = [v for v in served if v <= preferred]
    return max(candidates) if candidates else None


def render_response(response: MultiWorldRebalanceResponse, version: int) -> dict[str, Any]:
    """The JSON-ready wire form of ``response`` at ``version``.

    A v1 document has neither ``alpha_metrics`` nor ``rebalance_intent``; a v2 document
    always has both (an empty intent is ``{"meta": {}}``).

    Raises:
        ValueError: a v2 rendering of a response without alpha metrics.
    """
    if version < 2:
        body = response.model_dump(mode="json", exclude=set(V2_ONLY_RESPONSE_KEYS))
        body["schema_version"] = version
        return body
    if response.alpha_metrics is None:
        raise ValueError("a v2 response needs alpha_metrics (zeros when there is no data)")
    body = response.model_dump(mode="json")
    if body.get("rebalance_intent") is None:
        body["rebalance_intent"] = {"meta": {}}
    body["schema_version"] = version
    return body


def to_v1_request_body(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a request body without the keys a v1-only WorldService does not know."""
    return {k: v for k, v in body.items() if k not in V2_REQUEST_FIELDS}
