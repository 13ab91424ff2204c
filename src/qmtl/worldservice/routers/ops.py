"""``GET /health`` (always open) and the authenticated OpenAPI document and docs page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from qmtl.contracts import WorldServiceHealth

from ..deps import Runtime

router = APIRouter(tags=["ops"])
docs_router = APIRouter(include_in_schema=False)


@router.get("/health", summary="Store, ControlBus, outbox lag, schema versions and flags",
            response_model=WorldServiceHealth)
async def health(runtime: Runtime) -> WorldServiceHealth:
    return await runtime.health.health()


@docs_router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@docs_router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json",
                               title=f"{request.app.title} - API docs")
