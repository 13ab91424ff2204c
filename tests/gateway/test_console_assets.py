"""``/console`` is served from the package with no external asset, and it has a "what to do"
for every error code that docs/errors.md documents."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from qmtl.gateway.routers.console import CONSOLE_DIR

from .conftest import Stack

ERRORS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_console_page_and_assets_are_served_without_a_token(stack: Stack) -> None:
    gw = stack.gateway(auth={"tokens": ["secret"]})
    page = httpx.get(f"{gw.url}/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in re.findall(r"""(?:src|href)=["'](/console/[^"']+)["']""", page.text):
        assert httpx.get(f"{gw.url}{asset}").status_code == 200, asset
    assert httpx.get(f"{gw.url}/console/example.json").json()["positions"]
    assert httpx.get(f"{gw.url}/console/..%2Fswagger-ui%2FLICENSE").status_code == 404
    assert httpx.get(f"{gw.url}/console/index.py").status_code == 404
    # The API behind the page keeps its auth.
    assert httpx.get(f"{gw.url}/allocations").status_code == 401


def test_console_files_reference_nothing_outside_the_gateway() -> None:
    for path in CONSOLE_DIR.iterdir():
        if path.suffix in (".html", ".js", ".css"):
            assert re.search(r"https?://", path.read_text()) is None, path.name


def test_every_documented_error_code_has_a_what_to_do() -> None:
    documented = set(re.findall(r"`(E_[A-Z_]+)`", ERRORS_PAGE.read_text()))
    script = (CONSOLE_DIR / "console.js").read_text()
    helped = set(re.findall(r"^\s+(E_[A-Z_]+): \"", script, re.MULTILINE))
    assert documented and documented <= helped
