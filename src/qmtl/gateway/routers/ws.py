"""``/ws``: rebalancing events for subscribers (SPEC 10); see ``qmtl.gateway.ws_session``."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from ..deps import GatewayState
from ..ws_session import serve_websocket

__all__ = ["router"]

router = APIRouter()


@router.websocket("/ws")
async def events(websocket: WebSocket) -> None:
    state: GatewayState = websocket.app.state.gateway
    await serve_websocket(websocket, hub=state.hub, tokens=state.settings.auth.tokens,
                          metrics=state.metrics)
