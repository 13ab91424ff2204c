"""Longer schemathesis campaigns against the WorldService and Gateway OpenAPI specs.

Runs both services in this process under uvicorn (real sockets; see
``tests/e2e/_fuzzing.py`` for the deployment and the checks: no 5xx except the documented 501,
every 4xx with a machine-readable code, responses conforming to the declared schemas) and
prints one table per service. Exit status 1 when any case failed.

Usage::

    uv run python scripts/fuzz.py --cases 10000
    uv run python scripts/fuzz.py --cases 5000 --seed 7 --service gateway
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5_000,
                        help="generated cases per service (at least; default 5000)")
    parser.add_argument("--seed", type=int, default=1,
                        help="base seed; CI uses 0, so other seeds explore new cases")
    parser.add_argument("--service", choices=["worldservice", "gateway", "both"],
                        default="both")
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error("--cases must be >= 1")

    sys.path.insert(0, str(ROOT))
    from tests.e2e._fuzzing import fuzz_service, fuzz_targets

    failed = False
    with fuzz_targets() as urls:
        for service, url in urls.items():
            if args.service not in ("both", service):
                continue
            started = time.perf_counter()
            report = fuzz_service(service, url, cases=args.cases, seed_value=args.seed)
            elapsed = time.perf_counter() - started
            print(report.table())
            print(f"  {elapsed:.1f} s, {report.cases / elapsed:.1f} cases/s")
            for failure in report.failures:
                print(f"  example: {failure}")
            failed = failed or report.failure_count > 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
