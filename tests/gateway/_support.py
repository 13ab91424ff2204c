"""Helpers for gateway tests: request recording around a real ASGI app, a legacy
WorldService, and request bodies.

Nothing here fakes the gateway: it runs under uvicorn (``ServerThread``) and talks to
WorldServices that are real HTTP servers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceRequestV1, RebalanceMode
from qmtl.engine import plan_rebalance
from qmtl.web.server import ServerThread
from tests._books import two_world_book


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    raw: bytes = b""
    chunked: bool = False  # sent with Transfer-Encoding: chunked (streamed)


@dataclass
class RequestLog:
    """Thread-safe list of the HTTP requests an app received (uvicorn runs in a thread)."""

    items: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Recorded) -> None:
        with self.lock:
            self.items.append(item)

    def to(self, path: str, method: str = "POST") -> list[Recorded]:
        with self.lock:
            return [r for r in self.items if r.path == path and r.method == method]

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


class Recording:
    """Pure ASGI wrapper recording method, path and JSON body of every HTTP request."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        done = False

        async def recording_receive() -> Message:
            nonlocal done
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and not done:
                    done = True
                    raw = b"".join(chunks)
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        body = raw
                    chunked = (b"transfer-encoding", b"chunked") in scope["headers"]
                    self.log.add(Recorded(scope["method"], scope["path"], body, raw, chunked))
            return message

        if scope["method"] == "GET":
            self.log.add(Recorded("GET", scope["path"], None))
        await self.app(scope, recording_receive, send)


class _StrictV1Request(MultiWorldRebalanceRequestV1):
    # A WorldService from before schema_version existed: any v2 key is an unknown field.
    model_config = ConfigDict(extra="forbid")


def legacy_worldservice_app() -> FastAPI:
    """A pre-v2 WorldService: strict v1 body (422 on ``schema_version`` and any v2 key), v1
    answer without a ``schema_version`` key, and a ``/health`` that lists no versions."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.post("/rebalancing/plan")
    async def plan(request: _StrictV1Request) -> JSONResponse:
        if request.mode is RebalanceMode.HYBRID:
            return JSONResponse({"detail": {"code": "E_REBALANCE_MODE_UNSUPPORTED",
                                            "message": "hybrid"}}, status_code=501)
        response = plan_rebalance(MultiWorldRebalanceRequest.model_validate(request.model_dump()))
        body = response.model_dump(mode="json", exclude={"alpha_metrics", "rebalance_intent",
                                                         "schema_version"})
        return JSONResponse(body)

    return app


@contextmanager
def serve(app: ASGIApp) -> Iterator[ServerThread]:
    with ServerThread(app) as server:
        yield server


def scaling_request(**overrides: Any) -> dict[str, Any]:
    """World w1 0.3 -> 0.2 (scale 2/3) with two strategies holding BTC, plus w2 unchanged.

    Hand calculation for w1: s1 holds 0.6 BTC and s2 0.9 BTC @ 60000, so the world moves
    (2/3 - 1) * 1.5 = -0.5 BTC; w2 (0.2 -> 0.2) moves nothing.
    """
    return two_world_book(**{"world_alloc_after": {"w1": 0.2, "w2": 0.2}, **overrides})
