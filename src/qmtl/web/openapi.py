"""OpenAPI for apps that parse their JSON bodies by hand, served behind the app's auth.

Both services read request bodies from bytes (``qmtl.web.bodies``), so FastAPI does not see
the body models; :func:`json_body` declares one on a route by reference and
:func:`install_openapi` adds the models' schemas to the components. ``/openapi.json`` and
``/docs`` are served with the same dependencies as the API (bearer tokens when configured).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from .static import mount_static, swagger_ui_html

__all__ = ["install_openapi", "json_body"]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the required JSON request body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def _schema_builder(app: FastAPI, models: Sequence[type[BaseModel]]
                    ) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in body.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = body
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def install_openapi(app: FastAPI, *, body_models: Sequence[type[BaseModel]],
                    dependencies: Sequence[Depends]) -> None:
    """Serve ``/openapi.json`` and ``/docs`` (Swagger UI, from the vendored files under
    ``/static``: no CDN) for ``app``.

    The app must be created with ``docs_url=None, openapi_url=None``; the two routes get
    ``dependencies`` (the API's auth) and stay out of the schema.
    """
    app.openapi = _schema_builder(app, body_models)  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False, dependencies=list(dependencies))
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=list(dependencies))
    async def docs(request: Request) -> HTMLResponse:
        return swagger_ui_html(openapi_url="/openapi.json",
                               title=f"{request.app.title} - API docs")

    mount_static(app)
