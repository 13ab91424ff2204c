"""`qmtl commitlog …` commands: ``tail`` prints the newest order batches.

``tail`` finds the log the way the gateway does: ``gateway.commit_log`` from ``--config`` or
``QMTL__GATEWAY__COMMIT_LOG``, else ``--data-dir`` (the folder ``qmtl up --data-dir`` writes
``commitlog.db`` to, ``.qmtl`` by default). It only reads: a SQLite log that does not exist is
reported, never created empty.

Exit status: 0 printed, 1 the commit log is missing or unavailable, 2 bad configuration or
options.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qmtl.cli._io import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    OutputFormat,
    console,
    fail,
    report_qmtl_error,
)
from qmtl.cli.gateway import ConfigOption
from qmtl.contracts.errors import CommitLogUnavailable, ConfigError

if TYPE_CHECKING:
    from qmtl.gateway.commitlog import CommitRecord

__all__ = ["app", "read_tail", "records_table"]

app = typer.Typer(help="commitlog commands", no_args_is_help=True)


async def read_tail(url: str, *, limit: int) -> list[CommitRecord]:
    """The newest ``limit`` records; a SQLite log is opened read-only (never created).

    Raises:
        CommitLogUnavailable: the log is missing or cannot be read.
    """
    from qmtl.gateway.commitlog import create_commit_log

    log = create_commit_log(url, read_only=True)
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


def commit_log_url(config: Path | None, data_dir: Path) -> str:
    """``gateway.commit_log`` as the file or environment set it, else the log under
    ``data_dir`` (where ``qmtl up --data-dir`` keeps it).

    Raises:
        ConfigError: the configuration is invalid (naming the key).
    """
    from qmtl.gateway.config import GatewaySettings
    from qmtl.settings import load_section

    default = f"sqlite:///{(data_dir / 'commitlog.db').resolve()}"
    settings = load_section(GatewaySettings, ("gateway",), path=config,
                            defaults={"commit_log": default})
    return settings.commit_log


@app.command("tail")
def tail(
    config: ConfigOption = None,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", help="Folder of the SQLite commit log, as for qmtl up "
                           "(unless the configuration sets gateway.commit_log).")]
    = Path(".qmtl"),
    limit: Annotated[int, typer.Option("--limit", min=0, help="newest N records")] = 20,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
) -> None:
    """Print the newest records of the gateway commit log (``gateway.commit_log``)."""
    try:
        url = commit_log_url(config, data_dir)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)
    from qmtl.gateway.commitlog import SqliteCommitLog, create_commit_log

    log = create_commit_log(url, read_only=True)
    if isinstance(log, SqliteCommitLog) and not Path(log.path).is_file():
        fail(f"no commit log at {log.path}: nothing was submitted there yet, or the gateway "
             "keeps it elsewhere (--data-dir, --config)", code=EXIT_FAILED)
    # The one-line error below says it all; the log's own error record would repeat it.
    logging.disable(logging.ERROR)
    try:
        records = asyncio.run(read_tail(url, limit=limit))
    except CommitLogUnavailable as exc:
        report_qmtl_error(exc, code=EXIT_FAILED)
    finally:
        logging.disable(logging.NOTSET)
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.to_wire() for r in records], indent=2))
    else:
        console.print(records_table(records))
