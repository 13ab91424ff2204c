"""``/docs`` on both services works offline: every asset is a vendored file served locally."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from qmtl.gateway.app import create_app as create_gateway
from qmtl.gateway.config import GatewaySettings
from qmtl.web.static import STATIC_DIR, SWAGGER_UI_VERSION
from qmtl.worldservice.app import create_app as create_worldservice
from qmtl.worldservice.config import WorldServiceSettings


def _apps() -> dict[str, FastAPI]:
    return {
        "gateway": create_gateway(GatewaySettings(worldservice_url="http://127.0.0.1:9")),
        "worldservice": create_worldservice(WorldServiceSettings(dsn="sqlite:///unused.db")),
    }


@pytest.mark.parametrize("name", ["gateway", "worldservice"])
async def test_docs_reference_no_external_asset(name: str) -> None:
    # No lifespan: /docs and the static files need none of the service's resources.
    transport = httpx.ASGITransport(app=_apps()[name])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _check_docs(client)


async def _check_docs(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert re.search(r"""(src|href)=["']https?://""", html) is None
    assert "https://" not in html and "http://" not in html
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", html)
    assert {a.rsplit("/", 1)[-1] for a in assets} == {
        "swagger-ui.css",
        "favicon-32x32.png",
        "swagger-ui-bundle.js",
    }
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 500
    assert (await client.get("/static/swagger-ui/LICENSE")).status_code == 200


def test_vendored_files_are_the_pinned_release_without_source_maps() -> None:
    bundle = (STATIC_DIR / "swagger-ui" / "swagger-ui-bundle.js").read_text()
    assert "sourceMappingURL" not in bundle
    assert "sourceMappingURL" not in (STATIC_DIR / "swagger-ui" / "swagger-ui.css").read_text()
    assert "Apache License" in (STATIC_DIR / "swagger-ui" / "LICENSE").read_text()
    assert SWAGGER_UI_VERSION.count(".") == 2
