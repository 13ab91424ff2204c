"""Pre-rollout gate: does the gateway serve the plan schema version you expect?

    uv run python scripts/check_gateway_health.py --expect-schema-version 2 [--gateway URL]

This is ``qmtl check-health`` itself (``qmtl.cli.health.app``): the same options, defaults
(``--gateway`` from ``$QMTL_GATEWAY_URL``, then http://127.0.0.1:8000) and help, and the same
exit codes: 0 every expectation holds, 1 with the reasons, 2 for bad usage.
"""

from __future__ import annotations

from qmtl.cli.health import app

if __name__ == "__main__":
    app(prog_name="check_gateway_health.py")
