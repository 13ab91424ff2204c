"""Regenerate the report images of the docs: ``docs/img/report-*.png``, drawn by matplotlib.

    uv run python scripts/report_screenshots.py            # (re)write the PNGs
    uv run python scripts/report_screenshots.py --check    # exit 1 when a PNG is stale

The input is the shipped example ``examples/returns.csv`` (three strategies and the ``market``
benchmark, 2020–2024). The tear sheet is built exactly as ``qmtl report --from
examples/returns.csv --benchmark market --log-scale`` builds it, and each chart the HTML page
embeds as SVG is written here as a PNG (same figure, Agg renderer). No browser is needed and the
output is byte-stable for a given matplotlib version.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "returns.csv"
OUTPUT = ROOT / "docs" / "img"
DPI = 100


def render(folder: Path) -> list[Path]:
    """Write every chart of the example's tear sheet into ``folder`` as ``report-<name>.png``."""
    import matplotlib

    from qmtl.cli.report import tear_sheet
    from qmtl.sdk._report_charts import STYLE, draw

    sheet = tear_sheet(SOURCE, benchmark="market", log_scale=True)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        for name, figure in draw(sheet).items():
            path = folder / f"report-{name}.png"
            # no "Software" tag: the bytes then depend on the drawing only
            figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 when a committed PNG differs"
    )
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            stale = [
                p.name
                for p in render(Path(tmp))
                if not (OUTPUT / p.name).is_file()
                or (OUTPUT / p.name).read_bytes() != p.read_bytes()
            ]
        if stale:
            print(f"stale: {', '.join(stale)}; run scripts/report_screenshots.py", file=sys.stderr)
            return 1
        print("docs/img report charts are up to date")
        return 0
    for path in render(OUTPUT):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
