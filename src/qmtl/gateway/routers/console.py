"""``/console``: the plan review console (static HTML, JS and CSS shipped in the package).

No build step and nothing from the internet: the files under ``qmtl/web/static/console``
are served as they are. The page itself needs no token (it asks for one); every API call
it makes carries the token and meets the API's auth.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from qmtl.web.static import STATIC_DIR

__all__ = ["CONSOLE_DIR", "router"]

CONSOLE_DIR = STATIC_DIR / "console"
_ASSETS = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "example.json": "application/json",
}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_page() -> FileResponse:
    # no-cache: a new gateway release must not run against a cached older page.
    return FileResponse(
        CONSOLE_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/console/{name}")
async def console_asset(name: str) -> FileResponse:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    return FileResponse(
        CONSOLE_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )
