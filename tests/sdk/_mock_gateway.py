"""An in-memory stand-in for the gateway's HTTP surface, for SDK *unit* tests only.

Tests that use it say so in their docstring; integration tests run the real gateway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class MockGateway:
    """Answers ``/health`` from ``health`` and records every request it gets."""

    health: dict[str, Any] = field(default_factory=lambda: v2_health())
    health_status: int = 200
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/health":
            return httpx.Response(self.health_status, json=self.health)
        status, body = self.answers.get(request.url.path, (200, {"schema_version": 1}))
        if isinstance(body, str | bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def health_calls(self) -> int:
        return sum(1 for r in self.requests if r.url.path == "/health")

    def last_body(self) -> Any:
        return json.loads(self.requests[-1].content)


def v2_health(*, version: int = 2, alpha: bool = True, effective: int | None = 2) -> dict[str, Any]:
    return {
        "status": "ok",
        "worldservice": {"status": "ok"}, "controlbus": {"status": "ok"},
        "commit_log": {"status": "ok"},
        "capabilities": {"rebalance_schema_version": version, "alpha_metrics_capable": alpha},
        "rebalance_schema_version": version, "alpha_metrics_capable": alpha,
        "effective_rebalance_schema_version": effective,
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
