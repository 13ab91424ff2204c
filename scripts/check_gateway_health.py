"""Pre-rollout gate: does the gateway serve plan schema version N end to end?

    uv run python scripts/check_gateway_health.py --expect-schema-version 2 [--gateway URL]

Same check as ``qmtl check-health`` (``qmtl.cli.health.run_health_check``): exit 0 when the
gateway's advertised and effective versions are >= N, else 1 with the reason; 2 for bad usage.
The gateway defaults to ``$QMTL_GATEWAY_URL``, then http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import os
import sys

from qmtl.cli.health import run_health_check
from qmtl.cli.plan import OutputFormat


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect-schema-version", type=_positive_int, required=True)
    parser.add_argument("--expect-alpha-metrics", action="store_true")
    parser.add_argument("--gateway",
                        default=os.environ.get("QMTL_GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("QMTL_GATEWAY_TOKEN"))
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.gateway.startswith(("http://", "https://")):
        parser.error(f"--gateway must be an http:// or https:// URL, got {args.gateway!r}")
    return run_health_check(
        args.gateway, expect_schema_version=args.expect_schema_version,
        expect_alpha_metrics=args.expect_alpha_metrics, token=args.token,
        output=OutputFormat.json if args.json else OutputFormat.table, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
