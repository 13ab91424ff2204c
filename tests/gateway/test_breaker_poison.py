"""No caller can lock the others out (SPEC 6): the breaker counts only connection errors,
timeouts and 502/503/504 — never a 4xx and never a 500 caused by one request's input.

A real gateway (default breaker: 5 failures open it) talks to small real WorldServices
under uvicorn that fail on a poisoned body the way a planner that overflows would.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qmtl.web.server import free_port

from ._legacy import v1_plan
from ._support import Recording, RequestLog, scaling_request
from .conftest import Stack

POISON = scaling_request(lot_size_by_symbol={"BTCUSDT": 1e-320})
ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}


def poisoned_worldservice(answer: str) -> Starlette:
    """Plans healthy bodies; a subnormal lot size makes it fail with ``answer``."""

    async def plan(request: Request) -> Response:
        body = await request.json()
        if any(0 < lot < 1e-300 for lot in (body.get("lot_size_by_symbol") or {}).values()):
            if answer == "500-crash":
                raise OverflowError("lot size overflows")  # Starlette: 500 text
            if answer == "500-coded":
                return JSONResponse({"detail": {"code": "E_INTERNAL",
                                                "message": "internal error: OverflowError"}},
                                    status_code=500)
            return JSONResponse({"detail": [{"type": "greater_than", "msg": "too small",
                                             "loc": ["body", "lot_size_by_symbol", "BTCUSDT"]}]},
                                status_code=422)
        return JSONResponse(v1_plan(body))

    return Starlette(routes=[Route("/rebalancing/plan", plan, methods=["POST"])])


def unwell_worldservice() -> Starlette:
    async def plan(request: Request) -> Response:
        await request.body()  # read, so the recorder sees the request
        return JSONResponse({"detail": {"code": "E_STORE_UNAVAILABLE", "message": "store down"}},
                            status_code=503)

    return Starlette(routes=[Route("/rebalancing/plan", plan, methods=["POST"])])


@pytest.mark.parametrize("answer", ["500-coded", "500-crash", "422"])
def test_six_poisoned_requests_do_not_lock_out_another_caller(stack: Stack,
                                                              answer: str) -> None:
    log = RequestLog()
    ws = stack.loop.serve(Recording(poisoned_worldservice(answer), log))
    gw = stack.gateway(ws.url, auth={"tokens": ["alice", "bob"]})
    for _ in range(6):
        response = httpx.post(f"{gw.url}/rebalancing/plan", json=POISON, headers=ALICE)
        detail: Any = response.json()["detail"]
        if answer == "422":
            assert response.status_code == 422
            assert detail[0]["loc"] == ["body", "lot_size_by_symbol", "BTCUSDT"]
        else:
            assert response.status_code == 502, response.text
            assert detail["code"] == "E_WORLDSERVICE_ERROR"
            assert detail["upstream_status"] == 500
            expected = ("Internal Server Error" if answer == "500-crash"
                        else {"code": "E_INTERNAL", "message": "internal error: OverflowError"})
            assert detail["upstream"] == expected
    good = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request(), headers=BOB)
    assert good.status_code == 200, good.text
    assert len(log.to("/rebalancing/plan")) == 7  # every request reached the WorldService
    assert gw.metric("gateway_worldservice_breaker_state") == 0
    assert httpx.get(f"{gw.url}/health").json()["worldservice"]["breaker"] == "closed"


@pytest.mark.parametrize("outage", ["503", "connection-refused"])
def test_real_outages_still_open_the_breaker(stack: Stack, outage: str) -> None:
    log = RequestLog()
    if outage == "503":
        url = stack.loop.serve(Recording(unwell_worldservice(), log)).url
    else:
        url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    gw = stack.gateway(url, retries={"attempts": 1}, capability_refresh_seconds=3600)
    statuses, messages = [], []
    for _ in range(6):
        response = httpx.post(f"{gw.url}/rebalancing/plan", json=scaling_request())
        statuses.append(response.status_code)
        messages.append(response.json()["detail"]["message"])
    assert statuses == [503] * 6
    assert "circuit is open" in messages[-1]  # answered without calling the WorldService
    assert gw.metric("gateway_worldservice_breaker_state") == 2
    if outage == "503":
        # The start-up probe (/health: 404 here) proved nothing wrong; five 503s opened it.
        assert len(log.to("/rebalancing/plan")) == 5
        assert messages[:5] == ["store down"] * 5
