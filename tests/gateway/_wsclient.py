"""Helpers for the ``/ws`` tests: a library client, subscribe, publish on the gateway's bus.

Events are published on the gateway's ControlBus (on the server loop, as the WorldService
relay would). "Nothing else arrived" is checked with a marker event published afterwards:
delivery is in order, so anything that should not have been relayed would have arrived
before the marker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from qmtl.controlbus import BusMessage, create_controlbus

from .conftest import RunningGateway, Stack

RECV_GUARD = 20.0  # seconds: a hang guard, not a latency assertion


async def publish(stack: Stack, payload: bytes) -> BusMessage:
    bus = create_controlbus(stack.bus_url)
    return await stack.loop.arun(bus.publish("rebalancing", payload))


async def bus_epoch(stack: Stack) -> str:
    """The epoch the gateway's relay numbers under (the bus's, SPEC 10)."""
    bus = create_controlbus(stack.bus_url)
    return await stack.loop.arun(bus.epoch("rebalancing"))


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), RECV_GUARD))
    return message


@asynccontextmanager
async def client(gw: RunningGateway, *, query: str = "", headers: dict[str, str] | None = None,
                 **kwargs: Any) -> AsyncIterator[ClientConnection]:
    async with connect(gw.ws_url + query, additional_headers=headers, open_timeout=RECV_GUARD,
                       **kwargs) as ws:
        yield ws


async def subscribe(ws: ClientConnection, **fields: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"], **fields}))
    answer = await recv(ws)
    assert answer["type"] == "subscribed", answer
    return answer


async def events_until(ws: ClientConnection, marker_id: str) -> list[dict[str, Any]]:
    out = []
    while True:
        message = await recv(ws)
        out.append(message)
        if message.get("id") == marker_id:
            return out
