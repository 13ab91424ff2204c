"""``qmtl events``: follow rebalancing events on the gateway's WebSocket (SPEC 10).

One event has two names: the WorldService publishes CloudEvent type ``rebalancing_planned``
on the ControlBus (Redis), the gateway relays it on its WebSocket as ``rebalancing.planned``.
``--type`` accepts either spelling. ``--since-seq N`` resumes after the gateway's relay
sequence N; ``--count N`` stops after N events (for scripts and tests), otherwise Ctrl-C
stops. ``--output json`` writes one JSON object per line (the relayed message as received).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, OutputFormat, console, err_console, fail
from qmtl.cli._options import OutputOption, ReadGatewayOption, TokenOption, default_gateway

if TYPE_CHECKING:
    from qmtl.sdk import RebalancingEvent

__all__ = ["events_command", "event_type_key", "event_line"]

KNOWN_TYPES = ("rebalancing.planned",)
"""Event types the gateway's WebSocket relays (with their ControlBus twin spelled ``_``)."""


def event_type_key(name: str) -> str:
    """One spelling for both names of an event: ``rebalancing_planned`` (ControlBus) and
    ``rebalancing.planned`` (WebSocket) give the same key."""
    return name.strip().lower().replace("_", ".")


def event_line(event: RebalancingEvent) -> str:
    """A one-line summary of an event for people."""
    deltas = len(event.plan.deltas)
    return (f"seq {event.seq}  {event.type}  world {event.world_id}  run {event.run_id}  "
            f"schema_version {event.schema_version}  scale_world {event.plan.scale_world:.10g}  "
            f"{deltas} delta(s)  id {event.id}")


def events_command(
    gateway: ReadGatewayOption = None,
    world: Annotated[list[str] | None, typer.Option(
        "--world", "-w", metavar="WORLD", help="Only this world (repeat for several).")] = None,
    event_type: Annotated[list[str] | None, typer.Option(
        "--type", metavar="TYPE",
        help="Only this event type: rebalancing.planned (WebSocket name) or "
             "rebalancing_planned (ControlBus name); repeatable.")] = None,
    since_seq: Annotated[int | None, typer.Option(
        "--since-seq", min=0, metavar="SEQ",
        help="Resume after this relay sequence number (the seq of the last event seen).")
    ] = None,
    count: Annotated[int | None, typer.Option(
        "--count", min=1, metavar="N", help="Stop after N events (default: until Ctrl-C).")
    ] = None,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Follow rebalancing events from the gateway WebSocket (rebalancing.planned)."""
    from qmtl.cli.remote import WORLDSERVICE_HINT, report_gateway_error
    from qmtl.sdk import GatewayClient, GatewayError

    url = default_gateway(gateway)
    wanted = {event_type_key(t) for t in event_type or []}
    unknown = sorted(wanted - set(KNOWN_TYPES))
    if unknown:
        fail(f"unknown event type {', '.join(unknown)}: the WebSocket relays "
             "rebalancing.planned (rebalancing_planned on the ControlBus)", code=EXIT_BAD_INPUT)

    async def follow() -> None:
        seen = 0
        async with GatewayClient(url, token=token) as client:
            # Fail fast with one line when the URL is down or is a WorldService: the stream
            # itself would keep reconnecting, which is right only once it has connected.
            if await client.looks_like_worldservice():
                fail(f"{url}: {WORLDSERVICE_HINT}", code=EXIT_BAD_INPUT)
            stream = client.events(world_ids=world or None, since_seq=since_seq)
            info = await stream.subscribed()
            if output is OutputFormat.table:
                err_console.print(
                    f"following {client.ws_url} (recovered={str(info.recovered).lower()}); "
                    "Ctrl-C stops", highlight=False, markup=False, soft_wrap=True)
            async for event in stream:
                if wanted and event_type_key(event.type) not in wanted:
                    continue
                if output is OutputFormat.json:
                    sys.stdout.write(json.dumps(event.raw) + "\n")
                    sys.stdout.flush()
                else:
                    console.print(event_line(event), highlight=False, markup=False,
                                  soft_wrap=True)
                seen += 1
                if count is not None and seen >= count:
                    return

    try:
        asyncio.run(follow())
    except GatewayError as exc:
        report_gateway_error(exc)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
