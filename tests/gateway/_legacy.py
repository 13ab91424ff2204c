"""Fake WorldServices that answer the way the original (pre-v2) platform and other strict
legacy servers do. Each is a real ASGI app served over HTTP by the tests.

* :func:`original_v1_app` — FastAPI + pydantic v2, the original platform's v1 request
  model with ``extra="forbid"``: ``world_alloc_before`` and ``positions`` are *required*,
  ``schema_version``/``rebalance_intent``/``alpha_series``/``run_id`` are unknown fields
  (422 ``extra_forbidden``). It has no ``/health`` (404), like the original WorldService.
* :func:`pydantic_v1_app` — the same model under pydantic v1 (``Extra.forbid``), answering
  the old FastAPI way: 422 ``[{"loc": ["body", "schema_version"], "msg": "extra fields not
  permitted", "type": "value_error.extra"}]``.
* :func:`scripted_app` — answers every request carrying ``schema_version`` with a fixed
  status and body (text or JSON), and plans v1 requests.

The v1 plans come from our engine, so every fallback is checked against real figures.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from pydantic import v1 as pydantic_v1
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.engine import plan_rebalance

__all__ = ["OriginalV1Request", "original_v1_app", "pydantic_v1_app", "scripted_app",
           "v1_plan"]


def v1_plan(body: dict[str, Any]) -> dict[str, Any]:
    response = plan_rebalance(MultiWorldRebalanceRequest.model_validate(body))
    return response.model_dump(mode="json", exclude_none=True,
                               exclude={"alpha_metrics", "rebalance_intent", "schema_version"})


class _Position(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world_id: str
    strategy_id: str
    symbol: str
    qty: float
    mark: float
    venue: str | None = None


class _Overlay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument_by_world: dict[str, str] | None = None
    price_by_symbol: dict[str, float] | None = None
    min_order_notional: float | None = None


class OriginalV1Request(BaseModel):
    """The original platform's v1 ``MultiWorldRebalanceRequest``, made strict."""

    model_config = ConfigDict(extra="forbid")

    total_equity: float
    world_alloc_before: dict[str, float]
    world_alloc_after: dict[str, float]
    positions: list[_Position]
    strategy_alloc_before_total: dict[str, dict[str, float]] | None = None
    strategy_alloc_after_total: dict[str, dict[str, float]] | None = None
    min_trade_notional: float | None = None
    lot_size_by_symbol: dict[str, float] | None = None
    mode: str | None = None
    overlay: _Overlay | None = None


def original_v1_app() -> FastAPI:
    """A strict original-platform WorldService without ``/health`` (see module doc)."""
    app = FastAPI()

    @app.post("/rebalancing/plan")
    async def plan(request: OriginalV1Request) -> dict[str, Any]:
        return v1_plan(request.model_dump(exclude_none=True))

    return app


class _V1Position(pydantic_v1.BaseModel):
    world_id: str
    strategy_id: str
    symbol: str
    qty: float
    mark: float
    venue: str | None = None

    class Config:
        extra = pydantic_v1.Extra.forbid


class _V1Request(pydantic_v1.BaseModel):
    total_equity: float
    world_alloc_before: dict[str, float]
    world_alloc_after: dict[str, float]
    positions: list[_V1Position]
    strategy_alloc_before_total: dict[str, dict[str, float]] | None = None
    strategy_alloc_after_total: dict[str, dict[str, float]] | None = None
    min_trade_notional: float | None = None
    lot_size_by_symbol: dict[str, float] | None = None
    mode: str | None = None

    class Config:
        extra = pydantic_v1.Extra.forbid


def pydantic_v1_app() -> Starlette:
    """A pydantic v1 WorldService answering 422 the way FastAPI did with pydantic v1."""

    async def plan(request: Request) -> Response:
        try:
            model = _V1Request.parse_raw(await request.body())
        except pydantic_v1.ValidationError as exc:
            errors = [{**err, "loc": ["body", *err["loc"]]} for err in exc.errors()]
            return JSONResponse({"detail": errors}, status_code=422)
        return JSONResponse(v1_plan(model.dict(exclude_none=True)))

    return Starlette(routes=[Route("/rebalancing/plan", plan, methods=["POST"])])


def scripted_app(status: int, content: str | dict[str, Any] | list[Any]) -> Starlette:
    """Answers ``status`` with ``content`` (text, or a JSON body) to any request that
    carries ``schema_version``; plans the others at v1."""

    async def plan(request: Request) -> Response:
        body = json.loads(await request.body())
        if "schema_version" not in body:
            return JSONResponse(v1_plan(body))
        if isinstance(content, str):
            return Response(content, status_code=status, media_type="text/plain")
        return JSONResponse(content, status_code=status)

    return Starlette(routes=[Route("/rebalancing/plan", plan, methods=["POST"])])
