"""``mkdocs build --strict`` passes (a broken link, anchor or nav entry is a failure), and the
published site carries the JSON Schemas and the report charts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._markdown import DOCS, ROOT

REPORT_CHARTS = ("report-equity.png", "report-drawdown.png", "report-rolling.png")


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
    for chart in REPORT_CHARTS:
        assert (site / "img" / chart).is_file()
    assert (site / "ko" / "contract" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert [p for p in pages if p not in nav] == []


@pytest.mark.parametrize("chart", REPORT_CHARTS)
def test_the_report_charts_are_pngs_shown_on_both_report_pages(chart: str) -> None:
    # written by scripts/report_screenshots.py from the figures the HTML report embeds
    data = (DOCS / "img" / chart).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 300
    assert f"../img/{chart}" in (DOCS / "reference" / "report.md").read_text()
    assert f"../../img/{chart}" in (DOCS / "ko" / "reference" / "report.md").read_text()
