"""Health documents of both services (SPEC 2.5, 2.7)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._types import SchemaVersion

__all__ = [
    "ComponentHealth",
    "GatewayCapabilities",
    "GatewayHealth",
    "OutboxHealth",
    "WorldServiceHealth",
]


def _is_none(value: object) -> bool:
    return value is None


class ComponentHealth(BaseModel):
    """State of one dependency: ``ok``, ``down``, ``degraded``, ``disabled`` or ``unknown``."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "down", "degraded", "disabled", "unknown"]
    detail: str | None = Field(default=None, exclude_if=_is_none)


class OutboxHealth(BaseModel):
    pending: int = Field(ge=0)
    oldest_pending_age_seconds: float = Field(ge=0)


class WorldServiceHealth(BaseModel):
    """``GET /health`` of the WorldService; clients choose a version from ``schema_versions``."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["ok", "degraded"]
    store: ComponentHealth
    controlbus: ComponentHealth
    outbox: OutboxHealth
    schema_versions: list[SchemaVersion]
    compat_rebalance_v2: bool
    alpha_metrics_required: bool


class GatewayCapabilities(BaseModel):
    """The capability bits an SDK reads to switch features."""

    model_config = ConfigDict(extra="ignore")

    rebalance_schema_version: SchemaVersion
    alpha_metrics_capable: bool
    compute_context_contract: str | None = Field(default=None, exclude_if=_is_none)


class GatewayHealth(BaseModel):
    """``GET /health`` of the gateway.

    ``capabilities`` is the nested form; ``rebalance_schema_version`` and
    ``alpha_metrics_capable`` are top-level copies kept for older SDKs.
    ``effective_rebalance_schema_version`` is what the WorldService will actually serve to
    this gateway (``None`` while the WorldService's versions are unknown).
    """

    model_config = ConfigDict(extra="ignore")

    status: Literal["ok", "degraded"]
    worldservice: ComponentHealth
    controlbus: ComponentHealth
    commit_log: ComponentHealth
    capabilities: GatewayCapabilities
    rebalance_schema_version: SchemaVersion
    alpha_metrics_capable: bool
    effective_rebalance_schema_version: SchemaVersion | None = None
    worldservice_schema_versions: list[SchemaVersion] | None = None
    worldservice_alpha_metrics_required: bool | None = None
