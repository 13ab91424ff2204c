"""The WorldService audit trail (``GET /worlds/{world_id}/audit``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ._types import Identifier, SchemaVersion, WorldId

__all__ = ["AuditEntry", "WorldAudit"]


class AuditEntry(BaseModel):
    """One world's part of an applied plan: which run, which event, what changed.

    ``ratio_before``/``ratio_after`` are the world's allocation (ratio of total equity) that
    the plan moved from and to; ``seq`` is the world's event sequence number.
    """

    model_config = ConfigDict(extra="ignore")

    world_id: WorldId
    seq: int = Field(ge=1)
    run_id: Identifier
    event_id: Identifier
    action: str
    schema_version: SchemaVersion
    mode: str
    ratio_before: float | None = None
    ratio_after: float | None = None
    scale_world: float
    delta_count: int = Field(ge=0)
    created_at: datetime


class WorldAudit(BaseModel):
    """A world's audit entries, newest first."""

    model_config = ConfigDict(extra="ignore")

    world_id: WorldId
    entries: list[AuditEntry] = Field(default_factory=list)
