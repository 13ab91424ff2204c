"""``qmtl plan FILE``: plan locally with the engine, or through a gateway with ``--gateway``.

Locally there is no WorldService to negotiate with, so the plan is served at the version the
file asks for (``schema_version``, 1 when absent; ``--schema-version`` overrides it). A
version this qmtl does not know is refused with exit 2 before anything is planned or sent,
locally and with ``--gateway`` alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from qmtl.cli._io import (
    EXIT_BAD_INPUT,
    TabularFormat,
    emit,
    err_console,
    fail,
    load_request,
    report_qmtl_error,
)
from qmtl.cli._options import (
    FileArgument,
    InputOption,
    TabularOutputOption,
    TokenOption,
    resolve_input,
)

if TYPE_CHECKING:
    from qmtl.contracts import MultiWorldRebalanceRequest

__all__ = ["check_known_version", "plan_command", "plan_locally"]


def check_known_version(version: int) -> None:
    """Exit 2 when ``version`` is above the newest plan schema this qmtl implements."""
    from qmtl.contracts import LATEST_SCHEMA_VERSION

    if version > LATEST_SCHEMA_VERSION:
        fail(f"schema_version {version} is not supported: this qmtl serves plan schema "
             f"versions 1 to {LATEST_SCHEMA_VERSION}", code=EXIT_BAD_INPUT)


def plan_locally(request: MultiWorldRebalanceRequest) -> dict[str, Any]:
    """Plan with the engine and render at the request's version (v2 adds alpha metrics and
    the rebalance intent, as a WorldService serving v2 would).

    Raises:
        QmtlError: hybrid mode, or an incomplete overlay configuration.
        AlphaSeriesUnusable: v2 with an ``alpha_series`` that cannot become returns.
    """
    from qmtl.contracts import RebalanceIntent, render_response
    from qmtl.engine import plan_rebalance
    from qmtl.engine.alpha import alpha_envelope

    response = plan_rebalance(request)
    version = request.requested_version
    if version >= 2:
        response = response.model_copy(
            update={
                "alpha_metrics": alpha_envelope(request, response),
                "rebalance_intent": request.rebalance_intent or RebalanceIntent(),
            }
        )
    return render_response(response, version)


def plan_command(
    file: FileArgument = None,
    input_file: InputOption = None,
    gateway: Annotated[str | None, typer.Option(
        "--gateway", envvar="QMTL_GATEWAY_URL", show_envvar=True, metavar="URL",
        help="Plan through this gateway (negotiated version) instead of locally.")] = None,
    token: TokenOption = None,
    schema_version: Annotated[int | None, typer.Option(
        "--schema-version", min=1, metavar="N",
        help="Ask for version N instead of the file's schema_version.")] = None,
    compat_v2: Annotated[bool, typer.Option(
        "--compat-v2", hidden=True,
        help="Deprecated, no effect: local planning serves the file's schema_version.")
    ] = False,
    output: TabularOutputOption = TabularFormat.table,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Print why each delta exists (local planning only).")] = False,
) -> None:
    """Plan a multi-world rebalance and print the response."""
    from qmtl.cli.render import plan_csv, print_plan
    from qmtl.contracts.errors import QmtlError
    from qmtl.engine.alpha_input import AlphaSeriesUnusable

    request = load_request(resolve_input(file, input_file))
    check_known_version(schema_version or request.requested_version)
    if explain:
        from qmtl.cli.explain import explain_command

        explain_command(request, gateway=gateway, output=output)
        return
    if gateway is not None:
        from qmtl.cli.remote import plan_remote

        if compat_v2:
            fail("--compat-v2 applies to local planning only; the gateway negotiates the version",
                 code=EXIT_BAD_INPUT)
        document = plan_remote(request, gateway=gateway, token=token,
                               schema_version=schema_version)
        emit(document, output, table=print_plan, csv=plan_csv)
        return
    if compat_v2:
        err_console.print("note: --compat-v2 is no longer needed: local planning serves the "
                          "file's schema_version", highlight=False, soft_wrap=True)
    if schema_version is not None:
        request = request.model_copy(update={"schema_version": schema_version})
    try:
        document = plan_locally(request)
    except QmtlError as exc:
        report_qmtl_error(exc, code=EXIT_BAD_INPUT)
    except AlphaSeriesUnusable as exc:
        fail(f"{exc.field}: {exc}", code=EXIT_BAD_INPUT)
    emit(document, output, table=print_plan, csv=plan_csv)
