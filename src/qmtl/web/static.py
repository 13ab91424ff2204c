"""Files shipped inside the package and served without a network: Swagger UI and the console.

Everything under ``qmtl/web/static/`` is served at :data:`STATIC_PATH` with no auth (they are
library files and a page that asks for the token; the API behind them keeps its auth).
``swagger-ui/`` is swagger-ui-dist :data:`SWAGGER_UI_VERSION` (Apache-2.0, ``LICENSE`` and
``NOTICE`` next to it), vendored with ``npm pack`` and stripped of its source-map comments so
that ``/docs`` works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "STATIC_PATH", "SWAGGER_UI_VERSION", "mount_static", "swagger_ui_html"]

STATIC_DIR = Path(__file__).with_name("static")
"""The package directory holding the shipped files."""

STATIC_PATH = "/static"
"""Where :func:`mount_static` serves them."""

SWAGGER_UI_VERSION = "5.35.0"
"""The vendored swagger-ui-dist release."""


def mount_static(app: FastAPI) -> None:
    """Serve :data:`STATIC_DIR` at :data:`STATIC_PATH` (idempotent per app)."""
    if not any(getattr(route, "path", None) == STATIC_PATH for route in app.routes):
        app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")


def swagger_ui_html(*, openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI loading only the vendored files (no CDN, no validator badge)."""
    base = f"{STATIC_PATH}/swagger-ui"
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{base}/swagger-ui-bundle.js",
        swagger_css_url=f"{base}/swagger-ui.css",
        swagger_favicon_url=f"{base}/favicon-32x32.png",
        # The default validator fetches a badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
