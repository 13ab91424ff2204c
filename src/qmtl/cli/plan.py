"""``qmtl plan FILE``: plan locally with the engine, or through a gateway with ``--gateway``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from qmtl.cli._io import (
    EXIT_BAD_INPUT,
    OutputFormat,
    emit,
    fail,
    load_request,
    report_qmtl_error,
)
from qmtl.cli.remote import plan_remote, resolve_input
from qmtl.cli.render import print_plan
from qmtl.contracts import (
    MultiWorldRebalanceRequest,
    RebalanceIntent,
    negotiate_schema_version,
    render_response,
)
from qmtl.contracts.errors import QmtlError
from qmtl.engine import plan_rebalance
from qmtl.engine.alpha import alpha_envelope
from qmtl.engine.alpha_input import AlphaSeriesUnusable

__all__ = ["plan_command", "plan_locally"]


def plan_locally(request: MultiWorldRebalanceRequest, *, compat_v2: bool) -> dict[str, Any]:
    """Plan with the engine as a WorldService with ``compat_rebalance_v2=compat_v2`` would.

    Raises:
        QmtlError: hybrid mode, or an incomplete overlay configuration.
        AlphaSeriesUnusable: v2 with an ``alpha_series`` that cannot become returns.
    """
    response = plan_rebalance(request)
    version = negotiate_schema_version(
        request.schema_version, compat_rebalance_v2=compat_v2, alpha_metrics_required=False
    )
    if version >= 2:
        response = response.model_copy(
            update={
                "alpha_metrics": alpha_envelope(request, response),
                "rebalance_intent": request.rebalance_intent or RebalanceIntent(),
            }
        )
    return render_response(response, version)


def plan_command(
    file: Annotated[
        Path | None,
        typer.Argument(help="Request JSON (MultiWorldRebalanceRequest).", show_default=False),
    ] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="Alias of FILE.", show_default=False)
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            envvar="QMTL_GATEWAY_URL",
            show_envvar=True,
            help="Plan through this gateway instead of locally.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="QMTL_GATEWAY_TOKEN",
            show_envvar=True,
            help="Bearer token for --gateway.",
        ),
    ] = None,
    schema_version: Annotated[
        int | None,
        typer.Option("--schema-version", min=1, help="Override the file's schema_version."),
    ] = None,
    compat_v2: Annotated[
        bool,
        typer.Option("--compat-v2", help="Local planning: serve v2 like compat_rebalance_v2=true."),
    ] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Print why each delta exists (local planning only)."),
    ] = False,
) -> None:
    """Plan a multi-world rebalance and print the response."""

    request = load_request(resolve_input(file, input_file))
    if explain:
        from qmtl.cli.explain import explain_command

        explain_command(request, gateway=gateway, output=output)
        return
    if gateway is not None:
        if compat_v2:
            fail(
                "--compat-v2 applies to local planning only; the gateway negotiates the version",
                code=EXIT_BAD_INPUT,
            )
        document = plan_remote(request, gateway=gateway, token=token, schema_version=schema_version)
        emit(document, output, table=print_plan)
        return
    if schema_version is not None:
        request = request.model_copy(update={"schema_version": schema_version})
    try:
        document = plan_locally(request, compat_v2=compat_v2)
    except QmtlError as exc:
        report_qmtl_error(exc, code=EXIT_BAD_INPUT)
    except AlphaSeriesUnusable as exc:
        # escape: "[w1]" in the path would otherwise be read as rich markup and vanish
        fail(escape(f"{exc.field}: {exc}"), code=EXIT_BAD_INPUT)
    emit(document, output, table=print_plan)
