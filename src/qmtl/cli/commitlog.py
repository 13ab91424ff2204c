"""`qmtl commitlog …` commands: ``tail`` prints the newest order batches.

Exit status: 0 printed, 1 the commit log is unavailable, 2 bad configuration or options.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qmtl.cli._io import EXIT_FAILED, OutputFormat, console, report_qmtl_error
from qmtl.cli.gateway import ConfigOption, load_settings_or_exit
from qmtl.contracts.errors import CommitLogUnavailable

if TYPE_CHECKING:
    from qmtl.gateway.commitlog import CommitRecord

__all__ = ["app", "read_tail", "records_table"]

app = typer.Typer(help="commitlog commands", no_args_is_help=True)


async def read_tail(url: str, *, limit: int) -> list[CommitRecord]:
    from qmtl.gateway.commitlog import create_commit_log

    log = create_commit_log(url)
    try:
        await log.start()
        return await log.tail(limit=limit)
    finally:
        await log.close()


def records_table(records: list[CommitRecord]) -> Table:
    table = Table(title="gateway.rebalance batches (oldest first)")
    for column in ("time (UTC)", "batch", "world", "scope", "strategy", "orders",
                   "reduce-only", "run"):
        table.add_column(column)
    for record in records:
        payload = record.payload
        when = datetime.fromtimestamp(record.ts_ms / 1000, UTC).isoformat(timespec="seconds")
        counts = payload.get("counts") or {}
        ratio = payload.get("reduce_only_ratio")
        table.add_row(
            when, record.batch_id, str(payload.get("world_id", "")),
            str(payload.get("scope", "")), str(payload.get("strategy_id") or ""),
            str(counts.get("orders", len(payload.get("orders") or []))),
            f"{ratio:.2f}" if isinstance(ratio, int | float) else "",
            str(payload.get("run_id") or ""),
        )
    return table


@app.command("tail")
def tail(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="newest N records")] = 20,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
) -> None:
    """Print the newest records of the gateway commit log (``gateway.commit_log``)."""
    settings = load_settings_or_exit(config)
    try:
        records = asyncio.run(read_tail(settings.commit_log, limit=limit))
    except CommitLogUnavailable as exc:
        report_qmtl_error(exc, code=EXIT_FAILED)
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.to_wire() for r in records], indent=2))
    else:
        console.print(records_table(records))

