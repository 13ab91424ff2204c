"""How long the console takes to render a 10,000-position preview in a real browser.

Starts ``qmtl up`` (no auth) and headless Debian chromium (see ``tests/e2e/_browser.py``),
puts a seeded request in the console and clicks "Preview plan + explain". Reported per run:
*plan ms* — plan + explain requests answered (both in parallel, measured in the page);
*render ms* — from the answers to two animation frames after the DOM was built (world
cards, the plan table, the explain table and alpha rows, laid out and painted). Not asserted
anywhere; numbers go into docs/benchmarks.md.

    uv run python bench/console.py [--positions 10000] [--symbols 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine_line, seeded_request  # noqa: E402
from tests.cli._up import QmtlUp  # noqa: E402
from tests.e2e._browser import browser_missing, start_browser  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        sys.exit(f"cannot run: {missing}")
    from selenium.webdriver.common.by import By

    request = seeded_request(args.positions, n_symbols=args.symbols, schema_version=2)
    with tempfile.TemporaryDirectory() as tmp:
        up = QmtlUp(Path(tmp) / "up").start()
        driver = start_browser(Path(tmp))
        try:
            driver.get(f"{up.gateway_url}/console")
            driver.execute_script(
                "document.getElementById('request-json').value = arguments[0];", json.dumps(request)
            )
            print(machine_line())
            print(
                f"chromium headless 1280x800, {args.positions:,} positions, "
                f"{args.symbols:,} symbols"
            )
            print("| run | explained keys | plan ms | render ms |")
            print("|---:|---:|---:|---:|")
            renders = []
            for run in range(1, args.runs + 1):
                driver.execute_script("window.qmtlConsole.state.lastPreview = null;")
                driver.find_element(By.ID, "preview").click()
                deadline = time.monotonic() + 120
                result = None
                while result is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    result = driver.execute_script("return window.qmtlConsole.state.lastPreview;")
                if result is None:
                    sys.exit("the preview did not finish in 120 s")
                renders.append(result["renderMs"])
                print(
                    f"| {run} | {result['keyRows']:,} | {result['fetchMs']:.0f} | "
                    f"{result['renderMs']:.0f} |"
                )
            print(f"median render: {statistics.median(renders):.0f} ms")
        finally:
            driver.quit()
            up.stop()


if __name__ == "__main__":
    main()
