"""``GET /health`` (always open) and the authenticated OpenAPI document and docs page."""

from __future__ import annotations

from fastapi import APIRouter

from qmtl.contracts import WorldServiceHealth

from ..deps import Runtime

router = APIRouter(tags=["ops"])
@router.get("/health", summary="Store, ControlBus, outbox lag, schema versions and flags",
            response_model=WorldServiceHealth)
async def health(runtime: Runtime) -> WorldServiceHealth:
    return await runtime.health.health()
