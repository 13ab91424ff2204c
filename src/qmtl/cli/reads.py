"""``qmtl allocations``, ``qmtl runs show RUN_ID`` and ``qmtl audit WORLD``: what the
WorldService has recorded, read through the gateway (which relays these reads behind its
auth). The gateway defaults to ``$QMTL_GATEWAY_URL``, then http://127.0.0.1:8000.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Console

from qmtl.cli._io import TabularFormat, emit
from qmtl.cli._options import (
    ReadGatewayOption,
    TabularOutputOption,
    TokenOption,
    default_gateway,
)
from qmtl.cli.tables import Section, fmt, print_sections, to_csv

__all__ = ["allocations_command", "audit_command", "run_show_command", "runs_app"]

AUDIT_COLUMNS = ("seq", "created_at", "run_id", "action", "schema_version", "mode",
                 "ratio_before", "ratio_after", "scale_world", "delta_count", "event_id")


def _print_allocations(console: Console, document: Mapping[str, Any]) -> None:
    section = Section("Allocations", ("world", "ratio", "strategy", "strategy_total",
                                      "updated_at"),
                      numeric=frozenset({"ratio", "strategy_total"}))
    for world_id, world in (document.get("worlds") or {}).items():
        totals = (world.get("strategy_alloc_total") or {}).items() or [(None, None)]
        for strategy_id, total in totals:
            section.rows.append((world_id, fmt(world.get("ratio")), fmt(strategy_id), fmt(total),
                                 fmt(world.get("updated_at"))))
    header = f"etag {document.get('etag', '')}, last run_id {document.get('run_id') or '-'}"
    print_sections(console, [header], [section])


def _allocations_csv(document: Mapping[str, Any]) -> str:
    return to_csv(("world_id", "ratio", "updated_at"),
                  ((w, a.get("ratio"), a.get("updated_at"))
                   for w, a in (document.get("worlds") or {}).items()))


def _print_audit(console: Console, document: Mapping[str, Any]) -> None:
    section = Section(f"Audit of world {document.get('world_id', '')} (newest first)",
                      AUDIT_COLUMNS, numeric=frozenset({"seq", "ratio_before", "ratio_after",
                                                        "scale_world", "delta_count"}))
    for entry in document.get("entries") or []:
        section.rows.append(tuple(fmt(entry.get(column)) for column in AUDIT_COLUMNS))
    print_sections(console, [], [section])


def _audit_csv(document: Mapping[str, Any]) -> str:
    return to_csv(AUDIT_COLUMNS, (tuple(e.get(c) for c in AUDIT_COLUMNS)
                                  for e in document.get("entries") or []))


def allocations_command(
    world: Annotated[str | None, typer.Option(
        "--world", "-w", metavar="WORLD", help="Only this world.")] = None,
    gateway: ReadGatewayOption = None,
    token: TokenOption = None,
    output: TabularOutputOption = TabularFormat.table,
) -> None:
    """Show the recorded world allocations and their etag.

    The etag is what an apply's If-Match expects; the ratios are the next plan's
    world_alloc_before.
    """
    from qmtl.cli.remote import call_gateway

    document = call_gateway(default_gateway(gateway), token,
                            lambda client: client.allocations(world_id=world))
    emit(document, output, table=_print_allocations, csv=_allocations_csv)


runs_app = typer.Typer(help="Look up recorded apply runs.", no_args_is_help=True)


@runs_app.command("show")
def run_show_command(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run_id of an apply.")],
    gateway: ReadGatewayOption = None,
    token: TokenOption = None,
    output: TabularOutputOption = TabularFormat.table,
) -> None:
    """Show the stored response of an applied run (the plan it recorded)."""
    from qmtl.cli.remote import call_gateway
    from qmtl.cli.render import plan_csv, print_plan

    document = call_gateway(default_gateway(gateway), token, lambda client: client.run(run_id))
    emit(document, output, table=print_plan, csv=plan_csv)


def audit_command(
    world: Annotated[str, typer.Argument(metavar="WORLD", help="The world id.")],
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, max=10_000, metavar="N",
        help="At most N entries (the WorldService's default when unset).")] = None,
    gateway: ReadGatewayOption = None,
    token: TokenOption = None,
    output: TabularOutputOption = TabularFormat.table,
) -> None:
    """Show the audit trail of one world."""
    from qmtl.cli.remote import call_gateway

    document = call_gateway(default_gateway(gateway), token,
                            lambda client: client.audit(world, limit=limit))
    emit(document, output, table=_print_audit, csv=_audit_csv)
