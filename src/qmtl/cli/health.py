"""``qmtl check-health``: does the gateway serve the plan schema version you expect? (SPEC 2.7, 9)

``--expect-schema-version N`` is exact: the gateway's advertised *and* effective versions
must both be N. ``--min-schema-version N`` asks for at least N. ``--expect-alpha-metrics``
also requires alpha capability. Exit 0 when every expectation holds, 1 with the reasons
otherwise, 2 for bad usage. ``scripts/check_gateway_health.py`` runs this very command
(:data:`app`), so the two share options, defaults and help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, EXIT_FAILED, OutputFormat, console, err_console, fail
from qmtl.cli._io import write_json as _write_json
from qmtl.cli._options import DEFAULT_GATEWAY_URL, OutputOption, TokenOption, default_gateway

if TYPE_CHECKING:
    from qmtl.sdk import HealthCheckResult

__all__ = ["app", "check_health_command", "print_health_result", "run_health_check"]


def print_health_result(result: HealthCheckResult, *, output: OutputFormat) -> None:
    """The verdict on stdout (JSON or one line of facts); problems also on stderr."""
    summary = result.to_dict()
    if output is OutputFormat.json:
        _write_json(summary)
    else:
        console.print(
            f"gateway {result.gateway}: status={summary['status']} "
            f"rebalance_schema_version={summary['rebalance_schema_version']} "
            f"effective_schema_version={summary['effective_schema_version']} "
            f"alpha_metrics_capable={summary['alpha_metrics_capable']}", highlight=False,
            markup=False, soft_wrap=True)
        if result.ok:
            console.print("OK: the gateway meets the expectation", highlight=False)
    for problem in result.problems:
        err_console.print(f"FAILED: {problem}", highlight=False, markup=False, soft_wrap=True)


def run_health_check(gateway: str, *, expect_schema_version: int | None = None,
                     min_schema_version: int | None = None, expect_alpha_metrics: bool = False,
                     token: str | None = None, output: OutputFormat = OutputFormat.table,
                     timeout: float = 10.0) -> int:
    """Check, print, and return the exit status (0 ok, 1 failed)."""
    from qmtl.sdk import check_gateway_health_sync

    result = check_gateway_health_sync(
        gateway, expect_schema_version=expect_schema_version,
        min_schema_version=min_schema_version, expect_alpha_metrics=expect_alpha_metrics,
        token=token, timeout=timeout)
    print_health_result(result, output=output)
    return 0 if result.ok else EXIT_FAILED


def check_health_command(
    gateway: Annotated[str | None, typer.Option(
        "--gateway", envvar="QMTL_GATEWAY_URL", show_envvar=True, metavar="URL",
        help=f"Gateway URL (not the WorldService's).  [default: {DEFAULT_GATEWAY_URL}]")
    ] = None,
    expect_schema_version: Annotated[int | None, typer.Option(
        "--expect-schema-version", min=1, metavar="N",
        help="Advertised and effective versions must both be exactly N.")] = None,
    min_schema_version: Annotated[int | None, typer.Option(
        "--min-schema-version", min=1, metavar="N",
        help="Advertised and effective versions must both be at least N.")] = None,
    expect_alpha_metrics: Annotated[bool, typer.Option(
        "--expect-alpha-metrics", help="Also require alpha_metrics_capable.")] = False,
    token: TokenOption = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, metavar="SECONDS", help="Seconds to wait for /health.")] = 10.0,
    output: OutputOption = OutputFormat.table,
    json_flag: Annotated[bool, typer.Option(
        "--json", help="Same as --output json (kept for the seed script).")] = False,
) -> None:
    """Exit 0 when the gateway serves the expected plan schema version, else 1 with the reason.

    Pass --expect-schema-version N (exactly N) or --min-schema-version N (at least N), or
    both; the advertised and the effective version (what the WorldService behind the gateway
    will serve) are both checked.
    """
    if expect_schema_version is None and min_schema_version is None:
        fail("pass --expect-schema-version N (exactly N) or --min-schema-version N (at least N)",
             code=EXIT_BAD_INPUT)
    code = run_health_check(
        default_gateway(gateway), expect_schema_version=expect_schema_version,
        min_schema_version=min_schema_version, expect_alpha_metrics=expect_alpha_metrics,
        token=token, output=OutputFormat.json if json_flag else output, timeout=timeout)
    if code:
        raise typer.Exit(code)


app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
app.command("check-health")(check_health_command)
