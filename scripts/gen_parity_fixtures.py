"""Write ``tests/engine/data/parity_reference.json``: empyrical-reloaded/quantstats on every case.

    uv run --group parity python scripts/gen_parity_fixtures.py          # (re)write the fixture
    uv run --group parity python scripts/gen_parity_fixtures.py --check  # exit 1 when stale
    uv sync                                                              # drop the group again

The cases and the library calls live in ``tests/_parity.py``; the default tests read this file
so they do not need the libraries (and pandas, yfinance, curl-cffi… behind them) installed.
Floats are written with ``repr`` precision (exact float64 round trip); a non-finite library
answer (quantstats' profit factor without a loss is ``inf``) is written as a string.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    from tests._parity import CASES, REGENERATE, encode, library_versions, live_reference

    document = {
        "generated_by": REGENERATE,
        "libraries": library_versions(),
        "cases": {
            name: {
                "inputs_sha256": case.digest(),
                "periods_per_year": case.periods_per_year,
                "risk_free": case.risk_free,
                "transaction_cost": case.transaction_cost,
                "observations": int(case.excess().size),
                "reference": {k: encode(v) for k, v in live_reference(case).items()},
            }
            for name, case in CASES.items()
        },
    }
    return json.dumps(document, indent=1, allow_nan=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 when the committed fixture differs",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests._parity import FIXTURE

    rendered = render()
    if args.check:
        if FIXTURE.read_text() != rendered:
            print(f"{FIXTURE.relative_to(ROOT)} is stale: rerun without --check", file=sys.stderr)
            return 1
        print(f"{FIXTURE.relative_to(ROOT)} is up to date")
        return 0
    FIXTURE.write_text(rendered)
    print(f"wrote {FIXTURE.relative_to(ROOT)} ({rendered.count('inputs_sha256')} cases)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
