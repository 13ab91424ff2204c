"""Commands that talk to a gateway: ``qmtl apply``, ``qmtl execute`` and ``qmtl plan --gateway``.

Exit status (SPEC 9): 0 success; 1 the gateway refused the request (4xx/5xx, printed as
``E_CODE: message (HTTP status)``) or could not be reached; 2 bad input or usage (an invalid
request file is reported field by field before anything is sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, EXIT_FAILED, TabularFormat, console, emit, fail
from qmtl.cli._options import (
    FileArgument,
    GatewayOption,
    InputOption,
    TabularOutputOption,
    TokenOption,
    require_gateway,
    resolve_input,
)

if TYPE_CHECKING:
    from qmtl.contracts import MultiWorldRebalanceRequest
    from qmtl.sdk import ApplyOutcome, GatewayClient, GatewayError

# The SDK (httpx, websockets) is imported when a command runs, not when the CLI starts.

__all__ = [
    "GatewayOption",
    "TokenOption",
    "apply_command",
    "apply_summary",
    "call_gateway",
    "execute_command",
    "plan_remote",
    "report_gateway_error",
    "require_gateway",
    "resolve_input",
]

T = TypeVar("T")

WORLDSERVICE_HINT = (
    "this looks like a WorldService, not a gateway: point --gateway at the gateway "
    "(qmtl up serves it on port 8000, the WorldService on 8080)"
)


def report_gateway_error(exc: GatewayError) -> NoReturn:
    """Print one line for an SDK error and exit 1."""
    from qmtl.sdk import GatewayHTTPError, GatewayUnavailable

    if isinstance(exc, GatewayHTTPError):
        if exc.code == "E_PERMISSION_DENIED" and "X-Allow-Live" in exc.message:
            fail(f"{exc.code}: the gateway refuses live orders without consent: pass "
                 f"--allow-live together with --submit (HTTP {exc.status_code})")
        fail(f"{exc.code}: {exc.message} (HTTP {exc.status_code})", code=EXIT_FAILED)
    if isinstance(exc, GatewayUnavailable):
        fail(f"E_GATEWAY_UNAVAILABLE: {exc}", code=EXIT_FAILED)
    fail(f"{type(exc).__name__}: {exc}", code=EXIT_FAILED)


async def _refuse_worldservice(client: GatewayClient) -> None:
    """Exit 2 when the URL answers like a WorldService (its /health has no capabilities)."""
    from qmtl.sdk import GatewayError

    try:
        if await client.looks_like_worldservice():
            fail(f"{client.base_url}: {WORLDSERVICE_HINT}", code=EXIT_BAD_INPUT)
    except GatewayError:
        return  # unreachable or odd: the real call reports it


def call_gateway(gateway: str, token: str | None,
                 call: Callable[[GatewayClient], Awaitable[T]]) -> T:
    """Run ``call`` with a fresh client on a fresh event loop; SDK errors exit 1.

    The URL's ``/health`` is read first: a WorldService also answers plan, apply and the
    reads, so a ``--gateway`` pointed at one would silently bypass the gateway (its auth,
    negotiation and events); that exits 2 with a message saying so.
    """
    from qmtl.sdk import GatewayClient, GatewayError

    async def run() -> T:
        async with GatewayClient(gateway, token=token) as client:
            await _refuse_worldservice(client)
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


def apply_summary(outcome: ApplyOutcome) -> str:
    """One sentence saying what an apply did: recorded a new run, or replayed a recorded one."""
    if outcome.replayed:
        return (f"replayed run {outcome.run_id} (same run_id and body: nothing recorded or "
                f"published again), etag {outcome.etag}")
    return (f"recorded run {outcome.run_id}, {outcome.events_published} event(s) published "
            f"(rebalancing_planned on the ControlBus, rebalancing.planned on the WebSocket), "
            f"etag {outcome.etag}")


def apply_command(
    file: FileArgument = None,
    input_file: InputOption = None,
    gateway: GatewayOption = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", metavar="ID",
        help="Idempotency key: repeating it with the same body replays the recorded run.")
    ] = None,
    token: TokenOption = None,
    output: TabularOutputOption = TabularFormat.table,
) -> None:
    """Apply a rebalance plan through the gateway (records it and publishes events)."""
    from qmtl.cli._io import load_request
    from qmtl.cli.render import plan_csv, print_plan

    url = require_gateway(gateway)
    request = load_request(resolve_input(file, input_file))
    outcome = call_gateway(url, token,
                           lambda client: client.apply_outcome(request, run_id=run_id))
    emit(outcome.document, output, table=print_plan, csv=plan_csv)
    if output is TabularFormat.table:
        console.print(apply_summary(outcome), highlight=False, markup=False, soft_wrap=True)


def execute_command(
    file: FileArgument = None,
    input_file: InputOption = None,
    gateway: GatewayOption = None,
    per_strategy: Annotated[bool, typer.Option(
        "--per-strategy", help="Also split orders per strategy.")] = False,
    shared_account: Annotated[bool, typer.Option(
        "--shared-account", help="Net orders across worlds into one account.")] = False,
    submit: Annotated[bool, typer.Option(
        "--submit", help="Write the orders to the commit log (a dry run otherwise).")] = False,
    allow_live: Annotated[bool, typer.Option(
        "--allow-live", help="Consent to live orders; required with --submit.")] = False,
    token: TokenOption = None,
    output: TabularOutputOption = TabularFormat.table,
) -> None:
    """Turn a rebalance plan into orders through the gateway (a dry run unless --submit)."""
    from qmtl.cli._io import load_request
    from qmtl.cli.render import orders_csv, print_orders

    url = require_gateway(gateway)
    request = load_request(resolve_input(file, input_file))
    document = call_gateway(url, token, lambda client: client.execute(
        request, per_strategy=per_strategy, shared_account=shared_account, submit=submit,
        allow_live=allow_live))
    emit(document, output, table=print_orders, csv=orders_csv)
