"""Fixtures for gateway tests: real WorldServices and gateways on one server loop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from qmtl.gateway.app import create_app as create_gateway
from qmtl.gateway.commitlog import CommitLog
from qmtl.gateway.config import GatewaySettings
from qmtl.worldservice.app import create_app as create_worldservice
from qmtl.worldservice.config import WorldServiceSettings

from ._loop import Served, ServerLoop
from ._support import Recording, RequestLog, legacy_worldservice_app


@dataclass
class RunningWorldService:
    served: Served
    requests: RequestLog

    @property
    def url(self) -> str:
        return self.served.url


@dataclass
class RunningGateway:
    served: Served
    app: FastAPI
    registry: CollectorRegistry
    settings: GatewaySettings

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def ws_url(self) -> str:
        return self.served.ws_url

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


class Stack:
    """Starts WorldServices and gateways on one :class:`ServerLoop`."""

    def __init__(self, loop: ServerLoop, tmp_path: Path) -> None:
        self.loop = loop
        self.tmp_path = tmp_path
        self.bus_url = f"memory://gw-test-{uuid.uuid4().hex[:12]}"
        self._count = 0

    def _next(self) -> int:
        self._count += 1
        return self._count

    def worldservice(self, *, compat: bool = False, required: bool = False,
                     controlbus: str | None = None, port: int | None = None,
                     dsn: str | None = None, **extra: Any) -> RunningWorldService:
        settings = WorldServiceSettings(
            dsn=dsn or f"sqlite:///{self.tmp_path}/ws{self._next()}.db",
            controlbus=controlbus or self.bus_url,
            compat_rebalance_v2=compat, alpha_metrics_required=required,
            relay={"poll_interval": 0.2}, **extra,
        )
        log = RequestLog()
        served = self.loop.serve(Recording(create_worldservice(settings), log), port=port)
        return RunningWorldService(served, log)

    def legacy_worldservice(self) -> RunningWorldService:
        log = RequestLog()
        return RunningWorldService(self.loop.serve(Recording(legacy_worldservice_app(), log)),
                                   log)

    def gateway(self, worldservice_url: str = "http://127.0.0.1:9", *,
                port: int | None = None, commit_log_instance: CommitLog | None = None,
                **settings: Any) -> RunningGateway:
        if commit_log_instance is not None:
            settings["commit_log"] = commit_log_instance.url
        settings.setdefault("commit_log", f"sqlite:///{self.tmp_path}/commitlog{self._next()}.db")
        settings.setdefault("controlbus", self.bus_url)
        config = GatewaySettings(worldservice_url=worldservice_url, **settings)
        registry = CollectorRegistry()
        app = create_gateway(config, registry=registry, commit_log=commit_log_instance)
        return RunningGateway(self.loop.serve(app, port=port), app, registry, config)

    def stop(self, running: RunningGateway | RunningWorldService) -> None:
        self.loop.stop(running.served)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with ServerLoop() as loop:
        yield Stack(loop, tmp_path)
