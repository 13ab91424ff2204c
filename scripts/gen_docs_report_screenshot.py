"""Regenerate ``docs/assets/report-example.png``: an HTML ``qmtl report``, screenshotted headless.

    uv run python scripts/gen_docs_report_screenshot.py [--browser chromium]

The input is the committed daily-returns fixture ``tests/engine/data/alpha_daily.csv``
(1,500 periods). The report is rendered by the real command (``qmtl report --format html``)
and photographed with a headless Chromium (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "engine" / "data" / "alpha_daily.csv"
OUTPUT = ROOT / "docs" / "assets" / "report-example.png"
WINDOW = "1000,1050"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", default="chromium", help="Chromium executable")
    args = parser.parse_args(argv)
    browser = shutil.which(args.browser)
    if browser is None:
        print(f"{args.browser} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    qmtl = Path(sys.executable).with_name("qmtl")
    with tempfile.TemporaryDirectory(prefix="qmtl-docs-") as tmp:
        html = Path(tmp) / "report.html"
        subprocess.run([str(qmtl), "report", "--from", str(SOURCE), "--out", str(html),
                        "--format", "html"], check=True)
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--window-size={WINDOW}",
                        f"--screenshot={OUTPUT}", html.as_uri()],
                       check=True, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
