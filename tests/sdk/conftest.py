"""Fixtures for SDK integration tests: a real ``qmtl up`` and in-process server stacks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qmtl.gateway.app import create_app as create_gateway
from qmtl.gateway.config import GatewaySettings
from qmtl.web.server import ServerThread
from qmtl.worldservice.app import create_app as create_worldservice
from qmtl.worldservice.config import WorldServiceSettings
from tests._servers import free_port
from tests.cli._up import QmtlUp

FAST_RELAY = {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.4}

BOOK: dict[str, Any] = {
    "total_equity": 100000.0,
    "world_alloc_before": {"wa": 0.3, "wb": 0.2},
    "world_alloc_after": {"wa": 0.2, "wb": 0.3},
    "positions": [
        {"world_id": "wa", "strategy_id": "sa", "symbol": "BTC", "qty": 0.6, "mark": 20000.0,
         "venue": "x"},
        {"world_id": "wb", "strategy_id": "sc", "symbol": "BTC", "qty": 0.5, "mark": 20000.0,
         "venue": "x"},
    ],
}


def book(**changes: Any) -> dict[str, Any]:
    return {**BOOK, **changes}


@pytest.fixture(scope="session")
def up_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    """A real ``qmtl up`` process on its embedded v2 defaults."""
    up = QmtlUp(tmp_path_factory.mktemp("sdk-up-v2")).start()
    try:
        yield up
    finally:
        up.stop()


class Stack:
    """A WorldService and a gateway, each a real uvicorn server in its own thread.

    The gateway can be stopped and started again on the same port with other settings.
    """

    def __init__(self, tmp_path: Path, *, controlbus: str | None = None) -> None:
        self.controlbus = controlbus or f"memory://sdk-{uuid.uuid4().hex[:12]}"
        self.tmp_path = tmp_path
        ws_settings = WorldServiceSettings(
            dsn=f"sqlite:///{tmp_path / 'ws.db'}", controlbus=self.controlbus,
            compat_rebalance_v2=True, relay=FAST_RELAY)
        self.worldservice = ServerThread(create_worldservice(ws_settings))
        self.gateway_port = free_port()
        self.gateway: ServerThread | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start_gateway(self, **settings: Any) -> None:
        values: dict[str, Any] = {
            "worldservice_url": self.worldservice.url, "rebalance_schema_version": 2,
            "alpha_metrics_capable": True, "controlbus": self.controlbus,
            "commit_log": f"sqlite:///{self.tmp_path / 'commitlog.db'}",
        }
        values.update(settings)
        app = create_gateway(GatewaySettings(**values))
        self.gateway = ServerThread(app, port=self.gateway_port)
        self.gateway.start()

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    async def astart_gateway(self, **settings: Any) -> None:
        await asyncio.to_thread(self.start_gateway, **settings)

    async def astop_gateway(self) -> None:
        await asyncio.to_thread(self.stop_gateway)

    def close(self) -> None:
        self.stop_gateway()
        self.worldservice.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """WorldService (v2) + gateway (v2, alpha capable) on a private in-process bus."""
    s = Stack(tmp_path)
    s.worldservice.start()
    s.start_gateway()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def redis_stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    """The same on a real Redis Streams ControlBus (survives gateway restarts)."""
    s = Stack(tmp_path, controlbus=redis_url)
    s.worldservice.start()
    s.start_gateway()
    try:
        yield s
    finally:
        s.close()
