"""Request-scoped access to the objects the lifespan owns (``Annotated`` aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from qmtl.controlbus import ControlBus
from qmtl.gateway.commitlog import CommitLog

from .config import GatewaySettings
from .consumer import ControlBusConsumer
from .execute import ExecuteService
from .hub import EventHub
from .metrics import GatewayMetrics
from .worldservice_client import WorldServiceClient

__all__ = ["GatewayState", "StateDep", "get_state"]


@dataclass(frozen=True, slots=True)
class GatewayState:
    """Everything a running gateway holds; built once in the lifespan."""

    settings: GatewaySettings
    metrics: GatewayMetrics
    client: WorldServiceClient
    commit_log: CommitLog
    bus: ControlBus
    hub: EventHub
    consumer: ControlBusConsumer
    execute: ExecuteService


async def get_state(request: Request) -> GatewayState:
    # async: a plain def dependency would cost a thread-pool hop on every request.
    state: GatewayState = request.app.state.gateway
    return state


StateDep = Annotated[GatewayState, Depends(get_state)]
