"""Regenerate the report images of the docs: ``docs/img/report-*.png``, drawn by matplotlib.

    uv run python scripts/report_screenshots.py

The input is the shipped example ``examples/returns.csv`` (three strategies and the ``market``
benchmark, 2020–2024). The tear sheet is built exactly as ``qmtl report --from
examples/returns.csv --benchmark market --log-scale`` builds it, and each chart the HTML page
embeds as SVG is written here as a PNG (same figure, Agg renderer). No browser is needed and the
output is byte-stable for a given matplotlib version.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "returns.csv"
OUTPUT = ROOT / "docs" / "img"
DPI = 100


def main() -> int:
    import matplotlib

    from qmtl.cli.report import tear_sheet
    from qmtl.sdk._report_charts import STYLE, draw

    sheet = tear_sheet(SOURCE, benchmark="market", log_scale=True)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(STYLE):
        for name, figure in draw(sheet).items():
            path = OUTPUT / f"report-{name}.png"
            # no "Software" tag: the bytes then depend on the drawing only
            figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
