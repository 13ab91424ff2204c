"""``mkdocs build --strict`` passes (a broken link, anchor or nav entry is a failure), and the
published site carries the JSON Schemas and the report screenshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ._markdown import DOCS, ROOT


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                             "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for schema in (ROOT / "schemas").glob("*.json"):
        published = site / "schemas" / schema.name
        assert json.loads(published.read_text()) == json.loads(schema.read_text())
    assert (site / "assets" / "report-example.png").is_file()
    assert (site / "ko" / "contract" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert [p for p in pages if p not in nav] == []


def test_the_report_screenshot_is_a_png() -> None:
    data = (DOCS / "assets" / "report-example.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 800
