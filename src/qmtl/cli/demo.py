"""``qmtl demo --gateway URL`` (and ``qmtl up --demo``): the example book end to end.

Through the SDK: read the gateway's capabilities, plan, subscribe to the WebSocket, apply,
show the event(s) that arrive, then execute as a dry run — printing rich tables throughout.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, console, err_console, fail, load_request
from qmtl.cli._options import InputOption, resolve_input
from qmtl.cli.remote import GatewayOption, TokenOption, report_gateway_error, require_gateway
from qmtl.cli.render import print_orders, print_plan
from qmtl.cli.tables import Section, print_sections
from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.sdk import GatewayClient, GatewayError, RebalancingEvent, Runner

__all__ = ["demo_command", "example_path", "run_demo", "run_demo_safely"]

EXAMPLE = Path("examples") / "rebalance.json"
EVENT_TIMEOUT = 10.0


def example_path() -> Path | None:
    """``examples/rebalance.json`` in the working directory, else in the source checkout."""
    for candidate in (Path.cwd() / EXAMPLE, Path(__file__).resolve().parents[3] / EXAMPLE):
        if candidate.is_file():
            return candidate
    return None


def _events_section(events: list[RebalancingEvent]) -> Section:
    section = Section("Events received on the WebSocket (type rebalancing.planned; the "
                      "ControlBus carries it as rebalancing_planned)",
                      ("seq", "world", "run_id", "schema", "deltas", "sharpe", "event id"),
                      numeric=frozenset({"seq", "deltas", "sharpe"}))
    for event in events:
        sharpe = ""
        if event.alpha_metrics is not None:
            value = event.alpha_metrics.per_world.get(event.world_id, {}).get(
                "alpha_performance.sharpe")
            sharpe = "" if value is None else f"{value:.4f}"
        section.rows.append((str(event.seq), event.world_id, event.run_id,
                             f"v{event.schema_version}", str(len(event.plan.deltas)), sharpe,
                             event.id))
    return section


async def run_demo(client: GatewayClient, request: MultiWorldRebalanceRequest, *,
                   event_timeout: float = EVENT_TIMEOUT) -> None:
    """Plan, apply (watching the WebSocket) and execute ``request``; print every step.

    Raises:
        GatewayError: the gateway refused a call or could not be reached.
    """
    runner = Runner(client)
    console.rule("[bold]1. capabilities")
    health = await client.health()  # an unreachable gateway stops the demo here
    caps = health.capabilities
    features = await runner.refresh(force=True)
    console.print(f"status={health.status} "
                  f"rebalance_schema_version={caps.rebalance_schema_version} "
                  f"effective={caps.effective_schema_version} "
                  f"alpha_metrics_capable={str(caps.alpha_metrics_capable).lower()}",
                  highlight=False)
    console.print(f"SDK feature alpha_metrics: {'on' if features.alpha_metrics else 'off'} "
                  f"({features.reason})", highlight=False)

    console.rule("[bold]2. plan")
    plan = await runner.plan(request)
    print_plan(console, plan.document)

    console.rule("[bold]3. apply (subscribed to the WebSocket first)")
    worlds = sorted(plan.document.get("per_world") or {})
    run_id = f"demo-{uuid.uuid4().hex[:12]}"
    async with client.events(world_ids=worlds or None) as stream:
        await stream.subscribed()
        applied = await runner.apply(request, run_id=run_id)
        print_plan(console, applied.document)
        received: list[RebalancingEvent] = []

        async def collect() -> None:
            pending = set(worlds)
            async for event in stream:
                if event.run_id == run_id:
                    received.append(event)
                    pending.discard(event.world_id)
                    if not pending:
                        return

        try:
            await asyncio.wait_for(collect(), event_timeout)
        except TimeoutError:
            err_console.print(f"[yellow]warning[/yellow]: only {len(received)} of {len(worlds)} "
                              f"event(s) arrived within {event_timeout:g}s", highlight=False)
    print_sections(console, [], [_events_section(received)])

    console.rule("[bold]4. execute (dry run)")
    executed = await runner.execute(request)
    print_orders(console, executed.document)


async def run_demo_safely(gateway: str, *, file: Path | None = None,
                          token: str | None = None) -> bool:
    """:func:`run_demo` for ``qmtl up --demo``: errors are printed, never raised."""
    path = file or example_path()
    if path is None:
        err_console.print(f"[bold red]error[/bold red]: demo book {EXAMPLE} not found",
                          highlight=False)
        return False
    try:
        request = MultiWorldRebalanceRequest.model_validate_json(path.read_text())
        async with GatewayClient(gateway, token=token) as client:
            await run_demo(client, request)
    except (GatewayError, OSError, ValueError) as exc:
        err_console.print(f"[bold red]demo failed[/bold red]: {exc}", highlight=False,
                          soft_wrap=True)
        return False
    console.rule("[bold green]demo finished")
    return True


def demo_command(
    file: Annotated[Path | None, typer.Argument(
        metavar="FILE", help="Request JSON [default: examples/rebalance.json].",
        show_default=False)] = None,
    input_file: InputOption = None,
    legacy_file: Annotated[Path | None, typer.Option(
        "--file", hidden=True, help="Old spelling of FILE.", show_default=False)] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Run the example book through plan -> apply -> event -> execute (dry run)."""
    url = require_gateway(gateway)
    given = file or legacy_file
    path = (resolve_input(given, input_file) if given or input_file else None) or example_path()
    if path is None:
        fail(f"demo book {EXAMPLE} not found; pass --file", code=EXIT_BAD_INPUT)
    request = load_request(path)

    async def run() -> None:
        async with GatewayClient(url, token=token) as client:
            await run_demo(client, request)

    try:
        asyncio.run(run())
    except GatewayError as exc:
        report_gateway_error(exc)
    console.rule("[bold green]demo finished")

