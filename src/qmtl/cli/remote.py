"""Commands that talk to a gateway: ``qmtl apply``, ``qmtl execute`` and ``qmtl plan --gateway``.

Exit status (SPEC 9): 0 success; 1 the gateway refused the request (4xx/5xx, printed as
``E_CODE: message (HTTP status)``) or could not be reached; 2 bad input or usage (an invalid
request file is reported field by field before anything is sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, EXIT_FAILED, OutputFormat, emit, fail, load_request
from qmtl.cli.render import print_orders, print_plan
from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.sdk import GatewayClient, GatewayError, GatewayHTTPError, GatewayUnavailable

__all__ = [
    "GatewayOption",
    "TokenOption",
    "apply_command",
    "call_gateway",
    "execute_command",
    "plan_remote",
    "report_gateway_error",
    "resolve_input",
]

T = TypeVar("T")

GatewayOption = Annotated[str | None, typer.Option(
    "--gateway", envvar="QMTL_GATEWAY_URL", show_envvar=True,
    help="Gateway URL, e.g. http://127.0.0.1:8000.")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="QMTL_GATEWAY_TOKEN", show_envvar=True,
    help="Bearer token when the gateway requires one.")]
FileArgument = Annotated[Path | None, typer.Argument(
    help="Request JSON (MultiWorldRebalanceRequest).", show_default=False)]
InputOption = Annotated[Path | None, typer.Option(
    "--input", "-i", help="Alias of FILE.", show_default=False)]
OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o")]


def resolve_input(file: Path | None, input_file: Path | None) -> Path:
    """FILE or ``--input`` (exactly one, or both naming the same file); exit 2 otherwise."""
    if file is not None and input_file is not None and file != input_file:
        fail(f"FILE ({file}) and --input ({input_file}) name different files",
             code=EXIT_BAD_INPUT)
    chosen = file or input_file
    if chosen is None:
        fail("missing the request file: pass FILE (or --input FILE)", code=EXIT_BAD_INPUT)
    return chosen


def require_gateway(gateway: str | None) -> str:
    """The gateway URL, or exit 2 with a hint."""
    if not gateway:
        fail("missing --gateway URL (or set QMTL_GATEWAY_URL)", code=EXIT_BAD_INPUT)
    if not gateway.startswith(("http://", "https://")):
        fail(f"--gateway must be an http:// or https:// URL, got {gateway!r}",
             code=EXIT_BAD_INPUT)
    return gateway


def report_gateway_error(exc: GatewayError) -> NoReturn:
    """Print one line for an SDK error and exit 1."""
    if isinstance(exc, GatewayHTTPError):
        fail(f"{exc.code}: {exc.message} (HTTP {exc.status_code})", code=EXIT_FAILED)
    if isinstance(exc, GatewayUnavailable):
        fail(f"E_GATEWAY_UNAVAILABLE: {exc}", code=EXIT_FAILED)
    fail(f"{type(exc).__name__}: {exc}", code=EXIT_FAILED)


def call_gateway(gateway: str, token: str | None,
                 call: Callable[[GatewayClient], Awaitable[T]]) -> T:
    """Run ``call`` with a fresh client on a fresh event loop; SDK errors exit 1."""

    async def run() -> T:
        async with GatewayClient(gateway, token=token) as client:
            return await call(client)

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        report_gateway_error(exc)


def plan_remote(request: MultiWorldRebalanceRequest, *, gateway: str, token: str | None,
                schema_version: int | None) -> dict[str, Any]:
    """``POST /rebalancing/plan`` through the gateway (the ``--gateway`` path of ``qmtl plan``)."""
    return call_gateway(require_gateway(gateway), token,
                        lambda client: client.plan(request, schema_version=schema_version))


def apply_command(
    file: FileArgument = None,
    input_file: InputOption = None,
    gateway: GatewayOption = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Idempotency key: repeating it with the same body is a no-op.")] = None,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Apply a rebalance plan through the gateway (records it and publishes events)."""
    url = require_gateway(gateway)
    request = load_request(resolve_input(file, input_file))
    document = call_gateway(url, token, lambda client: client.apply(request, run_id=run_id))
    emit(document, output, table=print_plan)


def execute_command(
    file: FileArgument = None,
    input_file: InputOption = None,
    gateway: GatewayOption = None,
    per_strategy: Annotated[bool, typer.Option(
        "--per-strategy", help="Also split orders per strategy.")] = False,
    shared_account: Annotated[bool, typer.Option(
        "--shared-account", help="Net orders across worlds into one account.")] = False,
    submit: Annotated[bool, typer.Option(
        "--submit", help="Write the orders to the commit log (dry run otherwise).")] = False,
    allow_live: Annotated[bool, typer.Option(
        "--allow-live", help="Send X-Allow-Live: true (needed with --submit).")] = False,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Turn a rebalance plan into orders through the gateway (a dry run unless --submit)."""
    url = require_gateway(gateway)
    request = load_request(resolve_input(file, input_file))
    document = call_gateway(url, token, lambda client: client.execute(
        request, per_strategy=per_strategy, shared_account=shared_account, submit=submit,
        allow_live=allow_live))
    emit(document, output, table=print_orders)
