"""The report charts in ``docs/img`` are what ``scripts/report_screenshots.py`` draws today."""

from __future__ import annotations

from pathlib import Path

from ._markdown import DOCS
from ._scripts import load_script


def test_the_committed_report_charts_are_up_to_date(tmp_path: Path) -> None:
    script = load_script("report_screenshots")
    written = script.render(tmp_path)
    assert sorted(p.name for p in written) == [
        "report-drawdown.png",
        "report-equity.png",
        "report-rolling.png",
    ]
    for path in written:
        committed = DOCS / "img" / path.name
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: uv run python scripts/report_screenshots.py"
        )
