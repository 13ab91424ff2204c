"""``GET /health`` (SPEC 2.7)."""

from __future__ import annotations

from fastapi import APIRouter

from qmtl.contracts import GatewayHealth

from ..deps import StateDep
from ..health import build_health

__all__ = ["router"]

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=GatewayHealth, summary="Gateway health and capabilities")
async def health(state: StateDep) -> GatewayHealth:
    """Capability bits (nested and top-level copies), component states and the schema version
    the WorldService will actually serve to this gateway."""
    return await build_health(settings=state.settings, client=state.client, bus=state.bus,
                              commit_log=state.commit_log)
