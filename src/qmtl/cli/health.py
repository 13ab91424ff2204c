"""``qmtl check-health``: is the gateway ready for plan schema version N? (SPEC 2.7, 9)

Exit 0 when the gateway's advertised *and* effective versions are ≥ N (and it is alpha
capable when ``--expect-alpha-metrics``), else exit 1 with the reason.
``scripts/check_gateway_health.py`` runs the same :func:`run_health_check`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qmtl.cli._io import EXIT_FAILED, OutputFormat, console, err_console
from qmtl.cli.remote import GatewayOption, TokenOption, require_gateway
from qmtl.sdk import HealthCheckResult, check_gateway_health_sync

__all__ = ["check_health_command", "print_health_result", "run_health_check"]


def print_health_result(result: HealthCheckResult, *, output: OutputFormat) -> None:
    """The verdict on stdout (JSON or one line per fact); problems also on stderr."""
    if output is OutputFormat.json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        summary = result.to_dict()
        console.print(
            f"gateway {result.gateway}: status={summary['status']} "
            f"rebalance_schema_version={summary['rebalance_schema_version']} "
            f"effective_schema_version={summary['effective_schema_version']} "
            f"alpha_metrics_capable={summary['alpha_metrics_capable']}", highlight=False)
        if result.ok:
            console.print("[green]OK[/green]: the gateway meets the expectation")
    for problem in result.problems:
        err_console.print(f"[bold red]FAILED[/bold red]: {problem}", highlight=False,
                          soft_wrap=True)


def run_health_check(gateway: str, *, expect_schema_version: int, expect_alpha_metrics: bool,
                     token: str | None = None, output: OutputFormat = OutputFormat.table,
                     timeout: float = 10.0) -> int:
    """Check, print, and return the exit status (0 ok, 1 failed)."""
    result = check_gateway_health_sync(
        gateway, expect_schema_version=expect_schema_version,
        expect_alpha_metrics=expect_alpha_metrics, token=token, timeout=timeout)
    print_health_result(result, output=output)
    return 0 if result.ok else EXIT_FAILED


def check_health_command(
    expect_schema_version: Annotated[int, typer.Option(
        "--expect-schema-version", min=1, help="N: advertised and effective must be >= N.")],
    gateway: GatewayOption = None,
    expect_alpha_metrics: Annotated[bool, typer.Option(
        "--expect-alpha-metrics", help="Also require alpha_metrics_capable.")] = False,
    token: TokenOption = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds.")] = 10.0,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
) -> None:
    """Exit 0 when the gateway serves plan schema version N end to end, else 1 with the reason."""
    code = run_health_check(require_gateway(gateway), expect_schema_version=expect_schema_version,
                            expect_alpha_metrics=expect_alpha_metrics, token=token,
                            output=output, timeout=timeout)
    if code:
        raise typer.Exit(code)
